"""The metadata an exported model carries (docs/design.md, contract 2), shared by export and runtime.

Every value is a JSON string in the ONNX ``metadata_props``::

    labels             ["A", ..., "Z"]
    input              {"size": 32, "channels": 1, "polarity": "white_on_black",
                        "mean": 0.5, "std": 0.5, "margin": 2}
    lettercnn_version  "0.1.0"
    opset              18
    train              {"model": {...}, "config": {...}, "val_accuracy": ..., "test_accuracy": ...}
    exporter           "torch 2.14.1 (dynamo), onnx 1.23.2"
    calibration        {"temperature": 1.43, "min_confidence": 0.52, "ece_before": ..., "ece_after": ...,
                        "nll_before": ..., "nll_after": ..., "coverage": ..., "accuracy_answered": ...,
                        "refused": ..., "source": "..."}

``calibration`` (written by ``letters export``, see :mod:`lettercnn.calibration`) is
optional: a model without it is read at temperature 1 with no default threshold.
Every runtime -- Python (fp32 and int8), the camera, the browser page -- divides the
logits by ``temperature`` before the softmax and answers "?" below ``min_confidence``
unless the user sets another threshold (save a look-alike pair, I and L, that reaches
it together: :func:`lettercnn.calibration.answered`).

Light on purpose (json and the standard library): the torch-free runtime reads these
names. :func:`build` (what export stamps) and :func:`read_metadata` (an .onnx file's,
with ``onnx``) load torch and onnx inside, where they are called.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lettercnn import __version__
from lettercnn.labels import LETTERS
from lettercnn.runs import BEST_CHECKPOINT, CHECKPOINT_NAMES, CONFIG_FILE, METRICS_FILE, read_json

log = logging.getLogger(__name__)

META_LABELS = "labels"
META_INPUT = "input"
META_VERSION = "lettercnn_version"
META_OPSET = "opset"
META_TRAIN = "train"
META_EXPORTER = "exporter"
META_CALIBRATION = "calibration"
METADATA_KEYS = (META_LABELS, META_INPUT, META_VERSION, META_OPSET, META_TRAIN, META_EXPORTER, META_CALIBRATION)
# What the runtime cannot work without.
REQUIRED_KEYS = (META_LABELS, META_INPUT)
# Checkpoint keys copied into metadata 'train' (besides the model and train config).
CHECKPOINT_TRAIN_KEYS = ("epoch", "data_source", "best_epoch", "best_val_acc", "averaged_from")


def encode(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Metadata values as the JSON strings an ONNX file stores."""
    return {key: json.dumps(value, default=str) for key, value in metadata.items()}


def decode(props: Mapping[str, str]) -> dict[str, Any]:
    """Stored strings back to values; a string that is not JSON stays a string."""
    decoded: dict[str, Any] = {}
    for key, value in props.items():
        try:
            decoded[key] = json.loads(value)
        except json.JSONDecodeError:
            decoded[key] = value
    return decoded


def build(payload: Mapping[str, Any], checkpoint_file: Path, opset: int) -> dict[str, Any]:
    """The metadata an exported model carries (docs/design.md, contract 2), before JSON encoding.

    Args:
        payload: the checkpoint (:func:`lettercnn.nn.model.load_checkpoint`).
        checkpoint_file: where it was read, to find its run folder's files.
        opset: the opset written.

    Returns:
        ``labels``, ``input``, ``lettercnn_version``, ``opset``, ``train``, ``exporter``.

    Raises:
        ValueError: the model's class count does not match its labels.
    """
    import onnx
    import torch

    from lettercnn.nn.checkpoint import input_spec

    labels = [str(label) for label in payload.get("labels", LETTERS)]
    num_classes = payload["model_config"].get("num_classes")
    if len(labels) != num_classes:
        raise ValueError(f"{checkpoint_file}: {num_classes} classes but {len(labels)} labels ({''.join(labels)})")
    return {
        META_LABELS: labels,
        META_INPUT: input_spec(payload).to_dict(),
        META_VERSION: __version__,
        META_OPSET: opset,
        META_TRAIN: _train_summary(payload, checkpoint_file),
        META_EXPORTER: f"torch {torch.__version__} (dynamo), onnx {onnx.__version__}",
    }


def _train_summary(payload: Mapping[str, Any], checkpoint_file: Path) -> dict[str, Any]:
    """Model config, training config, data and accuracies, as far as they are known.

    The run folder's ``config.json`` stands in for a checkpoint without its train
    config; its ``metrics.json`` scores ``best.pt``, so it is used for that file only.
    Missing or unreadable run files are left out.
    """
    summary: dict[str, Any] = {"model": dict(payload["model_config"]), "checkpoint": checkpoint_file.name}
    summary.update({key: payload[key] for key in CHECKPOINT_TRAIN_KEYS if key in payload})
    in_run = checkpoint_file.name in CHECKPOINT_NAMES
    config = payload.get("train_config") or (_read_json(checkpoint_file.parent / CONFIG_FILE) if in_run else None)
    if config:
        summary["config"] = config
    if checkpoint_file.name == BEST_CHECKPOINT and (metrics := _read_json(checkpoint_file.parent / METRICS_FILE)):
        summary.update(_accuracies(metrics))
    return summary


def _accuracies(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Validation and test figures from a run's ``metrics.json`` (missing keys skipped)."""
    test = metrics.get("test") if isinstance(metrics.get("test"), Mapping) else {}
    found = {
        "val_accuracy": metrics.get("best_val_accuracy"),
        "best_epoch": metrics.get("best_epoch"),
        "test_accuracy": test.get("accuracy"),
        "test_loss": test.get("loss"),
        "test_count": test.get("count"),
        "data_source": metrics.get("data_source"),
        "sizes": metrics.get("sizes"),
    }
    return {key: value for key, value in found.items() if value is not None}


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a run file; None when it is missing or unreadable (logged)."""
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except ValueError as err:
        log.warning("ignoring %s", err)
        return None
    return data if isinstance(data, dict) else None


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of an .onnx file, JSON values decoded (others kept as strings).

    Uses ``onnx`` only; the torch-free runtime reads the same strings through
    ``onnxruntime.InferenceSession(path).get_modelmeta().custom_metadata_map``.

    Args:
        path: an .onnx file.

    Returns:
        ``{key: value}`` for every metadata entry (empty for a model without any).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not an ONNX model.
    """
    import onnx
    from google.protobuf.message import DecodeError

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"ONNX model not found: {file}")
    try:
        model = onnx.load(file, load_external_data=False)
    except DecodeError as err:
        raise ValueError(f"{file} is not an ONNX model: {err}") from None
    if not model.graph.node:
        raise ValueError(f"{file} is not an ONNX model (no graph)")
    return decode({entry.key: entry.value for entry in model.metadata_props})
