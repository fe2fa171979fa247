"""The run folder (docs/design.md, contract 4): its file names, making and finding one, reading it back.

::

    runs/<name>/
        config.json     the TrainConfig the run was started with
        history.json    one record per finished epoch (:class:`EpochRecord`)
        best.pt         the model at its best validation accuracy (what eval and export use)
        last.pt         the last finished epoch with optimizer, schedule, history and RNG
                        states, so a stopped run resumes exactly where it stopped
        metrics.json    the test split scored with best.pt: accuracy, loss, per-class
                        accuracy, confusion matrix, worst classes; best epoch, wall time,
                        device, data source
        loss.png        train and val loss, and val accuracy, per epoch
        confusion.png   the 26x26 test confusion matrix

The default name says the configuration (``bn-dropout0``) and a new run never reuses a
folder (``-2``, ``-3`` ...). Standard library only: the command line imports this module.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lettercnn.fileio import write_json

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
METRICS_FILE = "metrics.json"
LOSS_PLOT = "loss.png"
CONFUSION_PLOT = "confusion.png"
# A run folder's checkpoints in the order a folder given as "the model" is read.
CHECKPOINT_NAMES = (BEST_CHECKPOINT, LAST_CHECKPOINT)

# Where run folders go.
RUNS_DIR = "runs"
# The run `letters train` writes with every default (training.config.default_run_name):
# the one checkpoint export, eval, report and bench read when given none.
DEFAULT_RUN = Path(RUNS_DIR) / "bn-dropout0"
# The run of the model shipped in the package, kept in a source checkout.
SHIPPED_RUN = Path("models") / "bn-dropout0"


@dataclasses.dataclass(frozen=True)
class EpochRecord:
    """One line of ``history.json``.

    Attributes:
        epoch: 1-based epoch number.
        train_loss: mean cross-entropy over the epoch's training batches (augmented).
        train_acc: accuracy over the same batches, 0..1.
        val_loss: mean cross-entropy on the validation split, after the epoch.
        val_acc: validation accuracy, 0..1.
        lr: the learning rate of the epoch's last step.
        seconds: wall time of the epoch, validation included.
        images_per_s: training images per second (validation excluded).
    """

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    images_per_s: float


def read_json(path: str | os.PathLike[str]) -> Any:
    """The content of a JSON file of a run (or of an experiments folder).

    Raises:
        ValueError: the file is missing, unreadable or not JSON; the message names it.
    """
    file = Path(path)
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{file} is missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{file} cannot be read: {error}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{file} is not valid JSON: {error}") from None


def read_history(run_dir: str | os.PathLike[str]) -> list[EpochRecord]:
    """A run folder's ``history.json`` as epoch records.

    Raises:
        ValueError: the file is missing, not JSON, or not a list of epoch records.
    """
    file = Path(run_dir) / HISTORY_FILE
    records = read_json(file)
    try:
        return [EpochRecord(**record) for record in records]
    except TypeError as error:
        raise ValueError(f"{file} is not a run history: {error}") from None


def write_history(run_dir: str | os.PathLike[str], history: Sequence[EpochRecord]) -> None:
    """Write ``history.json`` (atomically)."""
    write_json(Path(run_dir) / HISTORY_FILE, [dataclasses.asdict(record) for record in history])


def read_metrics(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run folder's ``metrics.json``.

    Raises:
        ValueError: the file is missing, not JSON, or not a JSON object.
    """
    file = Path(run_dir) / METRICS_FILE
    metrics = read_json(file)
    if not isinstance(metrics, dict):
        raise ValueError(f"{file} is not a run's metrics (a JSON object)")
    return metrics


def make_run_dir(runs_dir: str | os.PathLike[str], name: str) -> Path:
    """Create a new run folder that never reuses an existing one.

    Args:
        runs_dir: the parent folder (created if missing).
        name: the wanted name; if taken, ``name-2``, ``name-3``... (ultralytics' increment_path).

    Returns:
        The new, empty folder.
    """
    root = Path(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    suffix = 1
    while True:
        candidate = root / (name if suffix == 1 else f"{name}-{suffix}")
        try:
            candidate.mkdir()  # atomic: two runs started at once cannot share a folder
        except FileExistsError:
            suffix += 1
            continue
        return candidate


def resolve_run(run: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The run folder and its ``last.pt`` for a ``resume`` argument.

    Args:
        run: a run folder or its ``last.pt``.

    Returns:
        ``(run_dir, last_checkpoint)``.

    Raises:
        FileNotFoundError: no such folder, or no ``last.pt`` in it.
        ValueError: a checkpoint other than ``last.pt`` (``best.pt`` has no optimizer state).
    """
    path = Path(run)
    if path.is_file():
        if path.name != LAST_CHECKPOINT:
            raise ValueError(
                f"cannot resume from {path}: only {LAST_CHECKPOINT} keeps the optimizer state; pass the run folder"
            )
        return path.parent, path
    if not path.is_dir():
        raise FileNotFoundError(f"run not found: {path}")
    if not (path / LAST_CHECKPOINT).is_file():
        raise FileNotFoundError(f"no {LAST_CHECKPOINT} in {path}; is it a run folder?")
    return path, path / LAST_CHECKPOINT


def default_checkpoint(checkpoint: str | os.PathLike[str] | None = None) -> Path:
    """The checkpoint a command reads: the one given, else :data:`DEFAULT_RUN`.

    Args:
        checkpoint: a ``.pt`` file or a run folder, or None for the default run.

    Returns:
        ``checkpoint`` as a path (checked later, by whoever loads it), or the default run.

    Raises:
        FileNotFoundError: none given and no default run; the message says how to get one.
    """
    if checkpoint is not None:
        return Path(checkpoint)
    if DEFAULT_RUN.exists():
        return DEFAULT_RUN
    raise FileNotFoundError(
        f"no checkpoint given and no {DEFAULT_RUN} (a fresh checkout has no {RUNS_DIR}/ yet): train one with "
        f"`letters train`, or pass --checkpoint {SHIPPED_RUN}, the run of the shipped model"
    )
