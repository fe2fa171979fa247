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
unless the user sets another threshold.

Light on purpose (json only): the torch-free runtime reads these names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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
