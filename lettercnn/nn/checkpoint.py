"""The checkpoint payload (docs/design.md, contract 5): what a ``.pt`` holds, writing and reading it.

A checkpoint is a dict written with ``torch.save`` and read with ``weights_only=True``::

    model_config       the ModelConfig as a dict: LetterCNN.from_checkpoint needs no flags
    state_dict         the weights
    input_spec         the preprocess.InputSpec the model trained with (export stamps it
                       into the ONNX metadata); checkpoints written before it was recorded
                       fall back to preprocess.DEFAULT_SPEC
    --- written by training (lettercnn.training.loop) ---
    epoch, train_config, labels, data_source, lettercnn_version
    best.pt:  val_acc
    last.pt:  optimizer, scheduler, history, best_epoch, best_val_acc, rng (for resume)
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lettercnn import preprocess
from lettercnn.fileio import atomic_path
from lettercnn.preprocess import InputSpec
from lettercnn.runs import CHECKPOINT_NAMES

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from lettercnn.nn.model import LetterCNN

MODEL_CONFIG = "model_config"
STATE_DICT = "state_dict"
INPUT_SPEC = "input_spec"
TRAIN_CONFIG = "train_config"
LABELS = "labels"
EPOCH = "epoch"
DATA_SOURCE = "data_source"
VERSION = "lettercnn_version"


def checkpoint_payload(model: LetterCNN, spec: InputSpec = preprocess.DEFAULT_SPEC) -> dict[str, Any]:
    """The keys every checkpoint has: the model config, the state dict and the input spec.

    Args:
        model: the model to save.
        spec: the input it was trained on (every training set goes through
            :func:`lettercnn.preprocess.canonical` with this spec).
    """
    config = asdict(model.config)
    config["conv"] = "img2col"  # a checkpoint rebuilds the training model by default
    return {MODEL_CONFIG: config, STATE_DICT: model.state_dict(), INPUT_SPEC: spec.to_dict()}


def save_checkpoint(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> None:
    """``torch.save`` a payload, atomically (a killed write leaves the old file)."""
    with atomic_path(path) as tmp:
        torch.save(dict(payload), tmp)


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint file, or the best checkpoint of a run folder (``best.pt``, else ``last.pt``).

    Raises:
        FileNotFoundError: neither the file nor a run folder with a checkpoint exists.
    """
    target = Path(path)
    if target.is_dir():
        for name in CHECKPOINT_NAMES:
            if (target / name).is_file():
                return target / name
        raise FileNotFoundError(f"no checkpoint ({' or '.join(CHECKPOINT_NAMES)}) in run folder {target}")
    if not target.is_file():
        raise FileNotFoundError(f"checkpoint not found: {target}")
    return target


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint payload and check it is ours.

    Args:
        path: a ``.pt`` file or a run folder (see :func:`resolve_checkpoint`).
        map_location: where to load the tensors.

    Raises:
        FileNotFoundError: see :func:`resolve_checkpoint`.
        ValueError: not a lettercnn checkpoint (unreadable, or missing its config).
    """
    file = resolve_checkpoint(path)
    # torch.save writes a zip archive; anything else (a truncated file, an image, text)
    # is refused here, before torch's unpickler meets bytes it reports with odd errors.
    if not zipfile.is_zipfile(file):
        raise ValueError(
            f"{file} is not a readable checkpoint: not a torch.save archive (empty, truncated, or another kind of file)"
        )
    try:
        payload = torch.load(file, map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"{file} is not a readable checkpoint: {reason}") from None
    if not isinstance(payload, dict) or MODEL_CONFIG not in payload or STATE_DICT not in payload:
        raise ValueError(f"{file} is not a lettercnn checkpoint (no {MODEL_CONFIG}/{STATE_DICT})")
    return payload


def input_spec(payload: Mapping[str, Any]) -> InputSpec:
    """The input spec a checkpoint's model trained with; the default spec for older checkpoints."""
    recorded = payload.get(INPUT_SPEC)
    return InputSpec.from_dict(recorded) if isinstance(recorded, Mapping) else preprocess.DEFAULT_SPEC
