"""Training: fit a LetterCNN, evaluate it, and keep every run in its own folder.

A run folder (DESIGN contract 4)::

    runs/<name>/
        config.json     the TrainConfig the run was started with
        history.json    one record per finished epoch: train/val loss and accuracy,
                        learning rate, seconds, training images per second
        best.pt         the model at its best validation accuracy (what eval and export use)
        last.pt         the last finished epoch with optimizer, schedule, history and RNG
                        states, so ``fit(resume=run)`` continues exactly where it stopped
        metrics.json    the test split scored with best.pt: accuracy, loss, per-class
                        accuracy, confusion matrix, worst classes; best epoch, wall time,
                        device, data source
        loss.png        train and val loss, and val accuracy, per epoch
        confusion.png   the 26x26 test confusion matrix

``last.pt`` is written at the end of every epoch (and once before the first), so a
Ctrl-C never needs to write anything: the run keeps the last *finished* epoch, and the
half-done one is dropped, because a mid-epoch state could not resume exactly.

torch, matplotlib and the data and model modules are imported inside the functions
that need them: ``lettercnn.cli`` imports this module for its option choices and must
stay light.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from lettercnn.fileio import atomic_path, remove_stale_temps, write_json
from lettercnn.labels import LETTERS, NUM_CLASSES

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import torch
    from matplotlib.figure import Figure
    from torch.utils.data import DataLoader, Dataset

    from lettercnn.data import Splits
    from lettercnn.nn.model import LetterCNN

log = logging.getLogger(__name__)

Optimizer = Literal["adam", "sgd"]
Device = Literal["auto", "cpu", "cuda"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
DEVICES: tuple[str, ...] = get_args(Device)

SGD_MOMENTUM = 0.9
# Weight decay when none is given. "adam" is AdamW, whose decoupled decay is scaled by
# the learning rate, so it takes a larger number than SGD's L2 term for a similar pull.
DEFAULT_WEIGHT_DECAY: dict[str, float] = {"adam": 1e-2, "sgd": 5e-4}
# OneCycle: warm up over the first 15% of steps from lr/25 to lr, then anneal (cosine)
# to lr/2500. It tolerates a high peak lr and ends in a sharp minimum, which is how a
# short CPU run gets its last percent.
ONECYCLE_WARMUP = 0.15
ONECYCLE_DIV_FACTOR = 25.0
ONECYCLE_FINAL_DIV_FACTOR = 100.0
EVAL_BATCH_SIZE = 256
WORST_CLASSES = 5
PLOT_DPI = 120

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
METRICS_FILE = "metrics.json"
LOSS_PLOT = "loss.png"
CONFUSION_PLOT = "confusion.png"

# Settings a resumed run may change: they change how the run computes, not what.
RESUME_OVERRIDES = ("device", "workers")
# Settings that a resumed run takes from its folder rather than from the config.
RESUME_IGNORED = ("name", "runs_dir")


class TrainingError(Exception):
    """Training cannot go on; the message says why and what to do."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite; training stopped, best.pt is kept."""


class RunFinishedError(TrainingError):
    """A resumed run has already trained all its epochs and written its metrics."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training; ``last.pt`` holds the last finished epoch.

    A ``KeyboardInterrupt``, so that code which does not know it still stops.

    Attributes:
        run_dir: the run folder, to pass to ``fit(resume=...)``.
        epochs_done: finished epochs kept in ``last.pt``.
        epochs: the epochs the run is configured for.
    """

    def __init__(self, run_dir: Path, epochs_done: int, epochs: int) -> None:
        super().__init__(f"training interrupted: {run_dir} keeps {epochs_done}/{epochs} finished epochs")
        self.run_dir = run_dir
        self.epochs_done = epochs_done
        self.epochs = epochs


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved as the run's ``config.json``.

    The defaults train the default model to >= 97% test accuracy on the built-in
    synthetic set within 20 minutes on a 2-core CPU (measured: 97.4% test accuracy, 8 min 7 s
    for the whole `letters train`).
    """

    # An ImageFolder root (see lettercnn.data.load_splits). None: the built-in synthetic
    # set, so that `letters train` works on a fresh machine with no download.
    data: str | None = None
    # Synthetic images per letter (ignored with `data`): 26 x 400 = 10,400 images, 8,320 to
    # train on. Training runs at ~170-200 images/s on 2 cores, so 10 epochs take ~8 minutes,
    # well inside 20 on a slower machine; the augmentation makes every epoch new images anyway.
    per_letter: int = 400
    # Passes over the training split. Measured with these defaults: val accuracy 90% after
    # epoch 1, 94% after 3, 98% at 8 as OneCycle anneals; test 97.4%, 8 minutes in all.
    epochs: int = 10
    # Throughput on the CPU is flat from 32 to 128; 64 gives 130 steps per epoch.
    batch_size: int = 64
    # Peak learning rate of the OneCycle schedule: AdamW at 2e-3 is fast and stable here.
    lr: float = 2e-3
    # "adam" (AdamW) converges fastest without tuning; "sgd" (momentum 0.9) wants lr ~0.05.
    optimizer: Optimizer = "adam"
    # None: the optimizer's usual value (DEFAULT_WEIGHT_DECAY).
    weight_decay: float | None = None
    # BatchNorm trains faster and higher (see lettercnn.nn.model.ModelConfig).
    batch_norm: bool = True
    # Augmentation already regularises the synthetic set; dropout only slows it down.
    dropout: float = 0.0
    # Seeds the split, the initial weights, the shuffling and the augmentation.
    seed: int = 0
    # "auto": CUDA when torch sees a GPU, else the CPU.
    device: Device = "auto"
    # DataLoader worker processes. 0: augment in the training process. Augmentation reads
    # ~12,000 images/s against ~200/s trained on 2 cores, so a worker would only compete
    # with the training threads for the cores.
    workers: int = 0
    # Run folder name; None: from the configuration, e.g. "bn-dropout0".
    name: str | None = None
    # Where run folders go.
    runs_dir: str = "runs"
    # Extra .ttf/.otf fonts for the synthetic set.
    fonts_dir: str | None = None
    # Images of no letter (blank pages, signs, scribbles, several or cut-off letters)
    # added to the training split, as a share of it, with the target "uniform"
    # (outlier exposure, lettercnn.nn.losses): what lets the model say "?". 0 turns it off.
    negatives: float = 0.15
    # Weight of the non-letters' loss term; 0.5 as in Hendrycks et al. (2019).
    outlier_weight: float = 0.5

    def __post_init__(self) -> None:
        for field in ("data", "runs_dir", "fonts_dir"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, str):
                object.__setattr__(self, field, os.fspath(value))
        if self.weight_decay is None and self.optimizer in DEFAULT_WEIGHT_DECAY:
            object.__setattr__(self, "weight_decay", DEFAULT_WEIGHT_DECAY[self.optimizer])
        _check_config(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """A config from its dict form (``config.json``), ignoring unknown keys.

        Raises:
            ValueError: a value is invalid (see :class:`TrainConfig`).
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            log.warning("ignoring unknown training settings: %s", ", ".join(unknown))
        return cls(**{key: value for key, value in values.items() if key in known})

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict."""
        return dataclasses.asdict(self)


def _check_config(config: TrainConfig) -> None:
    """Raise ValueError naming the first invalid setting and its valid values."""
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if config.device not in DEVICES:
        raise ValueError(f"unknown device {config.device!r}; choose one of {', '.join(DEVICES)}")
    positive = {"epochs": config.epochs, "batch_size": config.batch_size, "per_letter": config.per_letter}
    for field, value in positive.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{field} must be a positive integer, got {value!r}")
    if not math.isfinite(config.lr) or config.lr <= 0:
        raise ValueError(f"lr must be a positive number, got {config.lr}")
    if config.weight_decay is None or config.weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {config.weight_decay}")
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")
    if config.workers < 0:
        raise ValueError(f"workers must be >= 0, got {config.workers}")
    if not 0.0 <= config.negatives <= 1.0:
        raise ValueError(f"negatives must be in [0, 1] (a share of the training split), got {config.negatives}")
    if not math.isfinite(config.outlier_weight) or config.outlier_weight < 0:
        raise ValueError(f"outlier_weight must be >= 0, got {config.outlier_weight}")
    if config.name is not None and (config.name in ("", ".", "..") or any(sep in config.name for sep in "/\\")):
        raise ValueError(f"run name must be a plain folder name, got {config.name!r}")


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


def read_history(run_dir: str | os.PathLike[str]) -> list[EpochRecord]:
    """A run folder's ``history.json`` as epoch records.

    Raises:
        ValueError: the file is missing, not JSON, or not a list of epoch records.
    """
    file = Path(run_dir) / HISTORY_FILE
    try:
        return [EpochRecord(**record) for record in json.loads(file.read_text(encoding="utf-8"))]
    except FileNotFoundError:
        raise ValueError(f"{file} is missing") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{file} is not valid JSON: {error}") from None
    except TypeError as error:
        raise ValueError(f"{file} is not a run history: {error}") from None


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What a run is about to do; given to :attr:`Callbacks.on_start`."""

    run_dir: Path
    device: str
    data_source: str
    sizes: dict[str, int]
    start_epoch: int
    epochs: int


def _ignore(*_args: Any) -> None:
    """The default callback: do nothing."""


@dataclasses.dataclass
class Callbacks:
    """Hooks through which a caller (the CLI) follows training. All optional.

    Attributes:
        on_data_progress: ``(done, total)`` while the data is rendered or decoded.
        on_start: ``(info)`` once the data is ready, before the first epoch of this session.
        on_epoch_start: ``(epoch, epochs, batches)`` before each epoch.
        on_batch: ``(loss, acc, images_per_s)`` after each training batch: running
            means over the epoch so far.
        on_epoch_end: ``(record)`` after each epoch, once its checkpoints are written.
    """

    on_data_progress: Callable[[int, int], None] = _ignore
    on_start: Callable[[RunInfo], None] = _ignore
    on_epoch_start: Callable[[int, int, int], None] = _ignore
    on_batch: Callable[[float, float, float], None] = _ignore
    on_epoch_end: Callable[[EpochRecord], None] = _ignore


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """A model scored on a labelled set.

    Attributes:
        accuracy: top-1 accuracy, 0..1.
        loss: mean cross-entropy.
        per_class: accuracy per letter A..Z; None for a letter with no images.
        confusion: 26x26 counts, ``confusion[true][predicted]``.
        count: images scored.
        source: which images were scored (set by :func:`evaluate_checkpoint`).
    """

    accuracy: float
    loss: float
    per_class: dict[str, float | None]
    confusion: list[list[int]]
    count: int
    source: str = ""

    @classmethod
    def from_confusion(cls, confusion: Sequence[Sequence[int]], loss_sum: float) -> EvalResult:
        """Derive accuracies from a confusion matrix and the summed loss.

        Raises:
            ValueError: the matrix counts no images.
        """
        rows = [[int(n) for n in row] for row in confusion]
        count = sum(map(sum, rows))
        if count == 0:
            raise ValueError("nothing to evaluate: the data holds no images")
        correct = sum(rows[i][i] for i in range(len(rows)))
        totals = [sum(row) for row in rows]
        per_class = {letter: (rows[i][i] / totals[i] if totals[i] else None) for i, letter in enumerate(LETTERS)}
        return cls(correct / count, loss_sum / count, per_class, rows, count)

    def worst_classes(self, n: int = WORST_CLASSES) -> list[tuple[str, float]]:
        """The ``n`` letters with the lowest accuracy, worst first (letters with images only)."""
        scored = [(letter, acc) for letter, acc in self.per_class.items() if acc is not None]
        return sorted(scored, key=lambda item: item[1])[:n]

    def top_confusions(self, n: int = WORST_CLASSES) -> list[tuple[str, str, int]]:
        """The ``n`` most frequent mistakes as ``(true, predicted, count)``, most first."""
        mistakes = [
            (LETTERS[t], LETTERS[p], count)
            for t, row in enumerate(self.confusion)
            for p, count in enumerate(row)
            if t != p and count
        ]
        return sorted(mistakes, key=lambda item: -item[2])[:n]

    def confused_with(self, letter: str) -> tuple[str, int] | None:
        """The letter most often predicted for ``letter`` when wrong, and how often; None if never wrong."""
        row = self.confusion[LETTERS.index(letter)]
        mistakes = [(count, LETTERS[p]) for p, count in enumerate(row) if LETTERS[p] != letter and count]
        if not mistakes:
            return None
        count, predicted = max(mistakes)
        return predicted, count

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: accuracy, loss, count, source, per_class, worst_classes, top_confusions, confusion."""
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "count": self.count,
            "source": self.source,
            "per_class": self.per_class,
            "worst_classes": [{"letter": letter, "accuracy": acc} for letter, acc in self.worst_classes()],
            "top_confusions": [{"true": t, "predicted": p, "count": c} for t, p, c in self.top_confusions()],
            "labels": list(LETTERS),
            "confusion": self.confusion,
        }


@dataclasses.dataclass(frozen=True)
class RunResult:
    """A finished run.

    Attributes:
        run_dir: the run folder.
        config: the run's config.
        history: one record per epoch, over all sessions of the run.
        test: the test split scored with ``best.pt``.
        best_epoch: the epoch saved as ``best.pt``.
        best_val_acc: its validation accuracy.
        device: the device it trained on ("cpu", "cuda").
        data_source: where the images came from.
        wall_seconds: training time summed over epochs (and sessions), plus the test.
    """

    run_dir: Path
    config: TrainConfig
    history: list[EpochRecord]
    test: EvalResult
    best_epoch: int
    best_val_acc: float
    device: str
    data_source: str
    wall_seconds: float


def resolve_device(device: str) -> str:
    """The torch device to use for a ``device`` setting.

    Args:
        device: "auto" (CUDA if available, else CPU), "cpu" or "cuda".

    Returns:
        "cpu" or "cuda".

    Raises:
        ValueError: an unknown device, or "cuda" where torch sees no GPU.
    """
    import torch

    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA GPU; use 'cpu' or 'auto'")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's (CPU and CUDA) random generators."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_run_name(config: TrainConfig) -> str:
    """The run name that says the configuration, e.g. ``bn-dropout0.3`` or ``nobn-dropout0``."""
    return f"{'bn' if config.batch_norm else 'nobn'}-dropout{config.dropout:g}"


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


def resume_config(run: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """The saved config of a run, with the settings a resumed run may change.

    Args:
        run: a run folder or its ``last.pt``.
        **overrides: TrainConfig fields; None means "not given". Only
            :data:`RESUME_OVERRIDES` (device, workers) may differ from the saved values.

    Returns:
        The config to pass to ``fit(config, resume=run)``.

    Raises:
        FileNotFoundError: see :func:`resolve_run`; or the run has no config.json.
        ValueError: an override that would change what the run computes.
    """
    run_dir, _ = resolve_run(run)
    config_file = run_dir / CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"no {CONFIG_FILE} in {run_dir}; is it a run folder?")
    saved = TrainConfig.from_dict(json.loads(config_file.read_text(encoding="utf-8")))
    return _resumed_config(saved, overrides, run_dir)


def _resumed_config(saved: TrainConfig, overrides: Mapping[str, Any], run_dir: Path) -> TrainConfig:
    """``saved`` with the allowed overrides applied; ValueError for any other change."""
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown training settings: {', '.join(unknown)}")
    changed = {
        key: value
        for key, value in overrides.items()
        if value is not None and key not in RESUME_IGNORED and getattr(saved, key) != value
    }
    fixed = [key for key in changed if key not in RESUME_OVERRIDES]
    if fixed:
        shown = ", ".join(f"{key} (saved {getattr(saved, key)!r}, given {changed[key]!r})" for key in fixed)
        raise ValueError(
            f"a resumed run keeps its settings; {run_dir} cannot change {shown}. "
            f"Only {' and '.join(RESUME_OVERRIDES)} may change; start a new run for the rest"
        )
    return dataclasses.replace(saved, **changed)


def fit(
    config: TrainConfig | None = None,
    *,
    resume: str | os.PathLike[str] | None = None,
    callbacks: Callbacks | None = None,
) -> RunResult:
    """Train a LetterCNN and write its run folder.

    Args:
        config: the settings; None for the defaults, or with ``resume`` for the run's
            saved settings. With ``resume`` only device and workers may differ from
            the saved ones (see :func:`resume_config`).
        resume: a run folder (or its ``last.pt``) to continue, with its history, up to
            its configured epochs. A run whose epochs are done but whose metrics are
            missing (stopped during the final test) just writes them.
        callbacks: progress hooks.

    Returns:
        The finished run.

    Raises:
        FileNotFoundError: the data folder or the resumed run does not exist.
        ValueError: invalid settings; a split with no images.
        NonFiniteLossError: the loss became NaN/inf; ``best.pt`` and ``last.pt`` keep
            the last good epoch.
        RunFinishedError: the resumed run has nothing left to do.
        TrainingInterrupted: Ctrl-C; ``last.pt`` keeps the last finished epoch.
    """
    callbacks = callbacks or Callbacks()
    state: dict[str, Any] | None = None
    if resume is not None:
        run_dir, state = _load_resume_state(resume)
        saved = TrainConfig.from_dict(state["train_config"])
        config = _resumed_config(saved, config.to_dict() if config else {}, run_dir)
    config = config or TrainConfig()
    device = resolve_device(config.device)
    seed_everything(config.seed)
    splits = _load_splits(config, callbacks.on_data_progress)
    if resume is None:
        run_dir = make_run_dir(config.runs_dir, config.name or default_run_name(config))
        config = dataclasses.replace(config, name=run_dir.name)
        write_json(run_dir / CONFIG_FILE, config.to_dict())
    trainer = _Trainer(config, run_dir, splits, device, callbacks)
    if state is None:
        trainer.save_last()
    else:
        trainer.restore(state)
    return trainer.run()


def _load_resume_state(run: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """The run folder and its ``last.pt`` payload; RunFinishedError if nothing is left to do."""
    from lettercnn.nn.model import load_checkpoint

    run_dir, last = resolve_run(run)
    for stale in remove_stale_temps(run_dir):  # a run killed while writing leaves one
        log.info("removed %s, left by a write that was killed", stale.name)
    state = load_checkpoint(last)
    if "optimizer" not in state or "train_config" not in state:
        raise ValueError(f"{last} holds no training state to resume")
    epochs = int(state["train_config"]["epochs"])
    if state["epoch"] >= epochs and (run_dir / METRICS_FILE).is_file():
        raise RunFinishedError(
            f"{run_dir} has already trained all {epochs} epochs and written {METRICS_FILE}; "
            "nothing to resume (start a new run to train longer)"
        )
    log.info("resuming %s after epoch %d of %d", run_dir, state["epoch"], epochs)
    return run_dir, state


def _load_splits(config: TrainConfig, progress: Callable[[int, int], None]) -> Splits:
    """The train/val/test splits the config asks for; ``progress(done, total)`` while loading.

    Raises:
        FileNotFoundError: the data folder does not exist.
        ValueError: a split without images.
    """
    from lettercnn import data

    if config.data is None:
        splits = data.synthetic_splits(
            config.per_letter, seed=config.seed, fonts_dir=config.fonts_dir, progress=progress
        )
    else:
        splits = data.load_splits(config.data, seed=config.seed, progress=progress)
    if config.negatives > 0 and len(splits.train):
        count = round(config.negatives * len(splits.train))
        negatives = data.synthetic_negatives(count, seed=config.seed, fonts_dir=config.fonts_dir)
        train = splits.train + negatives
        train.transform = splits.train.transform
        splits = dataclasses.replace(
            splits, train=train, source=f"{splits.source}; + {count} images of no letter (outlier exposure)"
        )
    empty = [name for name, size in splits.sizes().items() if size == 0]
    if empty:
        raise ValueError(f"{splits.source}: no images in the {' and '.join(empty)} split; add more images per letter")
    return splits


def _loaders(
    splits: Splits, config: TrainConfig, device: str, generator: torch.Generator
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Train (shuffled by ``generator``, so a resume replays the same order), val and test loaders."""
    from torch.utils.data import DataLoader

    common: dict[str, Any] = {"num_workers": config.workers, "pin_memory": device == "cuda"}
    # Dropping a ragged last batch keeps BatchNorm away from a batch of one image.
    drop_last = len(splits.train) > config.batch_size
    train = DataLoader(
        splits.train, batch_size=config.batch_size, shuffle=True, drop_last=drop_last, generator=generator, **common
    )
    val = DataLoader(splits.val, batch_size=EVAL_BATCH_SIZE, **common)
    test = DataLoader(splits.test, batch_size=EVAL_BATCH_SIZE, **common)
    return train, val, test


def _make_optimizer(model: LetterCNN, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW for "adam", SGD with momentum 0.9 for "sgd"."""
    import torch

    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=SGD_MOMENTUM, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random state training draws from, as plain values (loadable with weights_only)."""
    import numpy as np
    import torch

    name, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": generator.get_state(),
    }


def _set_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    """Restore what :func:`_rng_state` saved (CUDA states only where the GPUs match)."""
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["loader"])


class _Trainer:
    """One session of a run: model, optimizer, schedule and loaders, and the files they write."""

    def __init__(self, config: TrainConfig, run_dir: Path, splits: Splits, device: str, callbacks: Callbacks) -> None:
        import torch

        from lettercnn.nn.model import LetterCNN

        self.config, self.run_dir, self.splits, self.device, self.callbacks = config, run_dir, splits, device, callbacks
        self.model = LetterCNN(batch_norm=config.batch_norm, dropout=config.dropout).to(device)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.train_loader, self.val_loader, self.test_loader = _loaders(splits, config, device, self.generator)
        self.optimizer = _make_optimizer(self.model, config)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer,
            max_lr=config.lr,
            total_steps=config.epochs * len(self.train_loader),
            pct_start=ONECYCLE_WARMUP,
            div_factor=ONECYCLE_DIV_FACTOR,
            final_div_factor=ONECYCLE_FINAL_DIV_FACTOR,
            cycle_momentum=False,  # keep SGD's momentum at 0.9 and Adam's betas as they are
        )
        self.history: list[EpochRecord] = []
        self.saved_epoch = 0  # the epoch last.pt holds
        self.best_epoch = 0
        self.best_val_acc = -1.0

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a ``last.pt`` payload: weights, optimizer, schedule, history, RNG."""
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = [EpochRecord(**record) for record in state["history"]]
        self.saved_epoch = int(state["epoch"])
        self.best_epoch = int(state["best_epoch"])
        self.best_val_acc = float(state["best_val_acc"])
        _set_rng_state(state["rng"], self.generator)

    def run(self) -> RunResult:
        """Train the remaining epochs, then score best.pt on the test split."""
        sizes = self.splits.sizes()
        info = RunInfo(self.run_dir, self.device, self.splits.source, sizes, self.saved_epoch, self.config.epochs)
        self.callbacks.on_start(info)
        try:
            for epoch in range(self.saved_epoch + 1, self.config.epochs + 1):
                self._epoch(epoch)
            return self._finish()
        except KeyboardInterrupt:
            raise TrainingInterrupted(self.run_dir, self.saved_epoch, self.config.epochs) from None

    def _epoch(self, epoch: int) -> None:
        """Train one epoch, validate, write checkpoints, history and the loss plot."""
        started = time.perf_counter()
        self.callbacks.on_epoch_start(epoch, self.config.epochs, len(self.train_loader))
        train_loss, train_acc, images_per_s, lr = self._train_epoch(epoch)
        val = evaluate(self.model, self.val_loader, self.device)
        seconds = time.perf_counter() - started
        record = EpochRecord(epoch, train_loss, train_acc, val.loss, val.accuracy, lr, seconds, images_per_s)
        self.history.append(record)
        if record.val_acc > self.best_val_acc:
            self.best_epoch, self.best_val_acc = epoch, record.val_acc
            self._save(BEST_CHECKPOINT, self._payload(epoch, val_acc=record.val_acc))
        self.save_last()
        write_json(self.run_dir / HISTORY_FILE, [dataclasses.asdict(r) for r in self.history])
        save_loss_plot(self.history, self.run_dir / LOSS_PLOT)
        self.callbacks.on_epoch_end(record)

    def _train_epoch(self, epoch: int) -> tuple[float, float, float, float]:
        """One pass over the training split; returns (loss, acc, images/s, last lr)."""
        from lettercnn.nn.losses import letter_loss

        self.model.train()
        loss_sum, correct, seen, lettered, lr = 0.0, 0, 0, 0, self.config.lr
        started = time.perf_counter()
        for batch, (images, labels) in enumerate(self.train_loader, start=1):
            images = images.to(self.device, non_blocking=True)  # (b, 1, 32, 32)
            labels = labels.to(self.device, non_blocking=True)  # (b,)
            logits = self.model(images)  # (b, 26)
            loss = letter_loss(logits, labels, self.config.outlier_weight)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise self._non_finite(loss_value, epoch, batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            lr = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            self.scheduler.step()
            seen += len(labels)
            lettered += int((labels >= 0).sum())  # accuracy is over letters: non-letters have no right answer
            loss_sum += loss_value * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            accuracy = correct / max(lettered, 1)
            self.callbacks.on_batch(loss_sum / seen, accuracy, seen / (time.perf_counter() - started))
        return loss_sum / seen, correct / max(lettered, 1), seen / (time.perf_counter() - started), lr

    def _non_finite(self, value: float, epoch: int, batch: int) -> NonFiniteLossError:
        """The error for a NaN/inf loss, saying what was kept and what to try."""
        if self.best_epoch:
            kept = f"{BEST_CHECKPOINT} keeps epoch {self.best_epoch} (val accuracy {self.best_val_acc:.1%})"
        else:
            kept = f"no epoch had finished, so there is no {BEST_CHECKPOINT}"
        return NonFiniteLossError(
            f"loss became {value} at epoch {epoch}, batch {batch}; training stopped in {self.run_dir}. "
            f"{kept}. Try a lower learning rate (lr was {self.config.lr:g})"
        )

    def _payload(self, epoch: int, **extra: Any) -> dict[str, Any]:
        """What every checkpoint of the run holds: model, config, labels, data, epoch."""
        from lettercnn import __version__
        from lettercnn.nn.model import checkpoint_payload

        payload = checkpoint_payload(self.model)
        payload.update(
            epoch=epoch,
            train_config=self.config.to_dict(),
            labels=list(LETTERS),
            data_source=self.splits.source,
            lettercnn_version=__version__,
            **extra,
        )
        return payload

    def save_last(self) -> None:
        """Write last.pt: everything needed to continue after the current epoch."""
        epoch = len(self.history)
        self._save(
            LAST_CHECKPOINT,
            self._payload(
                epoch,
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                history=[dataclasses.asdict(r) for r in self.history],
                best_epoch=self.best_epoch,
                best_val_acc=self.best_val_acc,
                rng=_rng_state(self.generator),
            ),
        )
        self.saved_epoch = epoch

    def _save(self, name: str, payload: Mapping[str, Any]) -> None:
        """``torch.save`` into the run folder, atomically."""
        import torch

        with atomic_path(self.run_dir / name) as tmp:
            torch.save(dict(payload), tmp)

    def _finish(self) -> RunResult:
        """Score best.pt on the test split; write metrics.json and confusion.png."""
        from lettercnn.nn.model import load_checkpoint

        best = load_checkpoint(self.run_dir / BEST_CHECKPOINT, map_location=self.device)
        self.model.load_state_dict(best["state_dict"])
        started = time.perf_counter()
        test = evaluate(self.model, self.test_loader, self.device)
        wall_seconds = sum(r.seconds for r in self.history) + time.perf_counter() - started
        result = RunResult(
            self.run_dir, self.config, list(self.history), test, self.best_epoch, self.best_val_acc,
            self.device, self.splits.source, wall_seconds,
        )
        metrics = {
            "test": test.to_dict(),
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_val_acc,
            "epochs": len(self.history),
            "wall_seconds": wall_seconds,
            "device": self.device,
            "data_source": self.splits.source,
            "sizes": self.splits.sizes(),
        }
        write_json(self.run_dir / METRICS_FILE, metrics)
        title = f"{self.run_dir.name}: test accuracy {test.accuracy:.2%}"
        save_confusion_plot(test.confusion, self.run_dir / CONFUSION_PLOT, title=title)
        return result


def evaluate(
    model: LetterCNN,
    data: Dataset | DataLoader,
    device: str | torch.device | None = None,
    *,
    batch_size: int = EVAL_BATCH_SIZE,
) -> EvalResult:
    """Score a model on labelled letters.

    Args:
        model: a LetterCNN, already on ``device``; its train/eval mode is restored after.
        data: a Dataset of ``(image (1, 32, 32), label)`` or a DataLoader over one.
        device: where to run; None: where the model's parameters are.
        batch_size: batch size when ``data`` is a Dataset.

    Returns:
        Accuracy, loss, per-class accuracy and the confusion matrix.

    Raises:
        ValueError: the data holds no images.
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=batch_size)
    device = device or next(model.parameters()).device
    confusion = torch.zeros(NUM_CLASSES * NUM_CLASSES, dtype=torch.int64)
    loss_sum = 0.0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for images, labels in loader:
                labels = labels.to(device)  # (b,)
                logits = model(images.to(device))  # (b, 26)
                loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
                cells = labels * NUM_CLASSES + logits.argmax(1)  # (b,) flat index of (true, predicted)
                confusion += torch.bincount(cells.cpu(), minlength=NUM_CLASSES * NUM_CLASSES)
    finally:
        model.train(was_training)
    return EvalResult.from_confusion(confusion.view(NUM_CLASSES, NUM_CLASSES).tolist(), loss_sum)


def save_figure(figure: Figure, path: str | os.PathLike[str]) -> None:
    """Write a matplotlib figure as PNG at PLOT_DPI, atomically: every plot the tool makes.

    Without matplotlib's Software tag (it names a URL, and the report's page, which
    embeds these PNGs, holds none).
    """
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=PLOT_DPI, metadata={"Software": None})


def save_loss_plot(history: Sequence[EpochRecord], path: str | os.PathLike[str]) -> None:
    """Plot train and val loss (left axis) and val accuracy (right axis) per epoch.

    Args:
        history: the run's epoch records.
        path: the PNG to write.
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
    from matplotlib.ticker import MaxNLocator

    epochs = [r.epoch for r in history]
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    loss_axes = figure.add_subplot()
    loss_axes.plot(epochs, [r.train_loss for r in history], marker="o", label="train loss")
    loss_axes.plot(epochs, [r.val_loss for r in history], marker="o", label="val loss")
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss and validation accuracy")
    loss_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc_axes = loss_axes.twinx()
    acc_axes.plot(epochs, [100 * r.val_acc for r in history], "s--", color="tab:green", label="val accuracy")
    acc_axes.set(ylabel="val accuracy (%)", ylim=(0, 100))
    handles, labels = loss_axes.get_legend_handles_labels()
    acc_handles, acc_labels = acc_axes.get_legend_handles_labels()
    loss_axes.legend(handles + acc_handles, labels + acc_labels, loc="center right")
    save_figure(figure, path)


def save_confusion_plot(
    confusion: Sequence[Sequence[int]], path: str | os.PathLike[str], *, title: str = "Confusion matrix"
) -> None:
    """Plot a 26x26 confusion matrix: colour is the share of each true letter, numbers the mistakes.

    Args:
        confusion: counts, ``confusion[true][predicted]``.
        path: the PNG to write.
        title: the figure title.
    """
    import numpy as np
    from matplotlib.figure import Figure

    counts = np.asarray(confusion, dtype=np.int64)  # (26, 26)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(9, 8), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(NUM_CLASSES), LETTERS)
    axes.set_yticks(range(NUM_CLASSES), LETTERS)
    axes.set(xlabel="predicted", ylabel="true", title=title)
    for true, predicted in zip(*np.nonzero(counts)):
        if true != predicted:
            count = str(counts[true, predicted])
            axes.text(predicted, true, count, ha="center", va="center", fontsize=6, color="crimson")
    figure.colorbar(image, ax=axes, label="share of the true letter")
    save_figure(figure, path)


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    device: str = "auto",
) -> EvalResult:
    """Score a checkpoint on a folder of letter images.

    Which images are scored (``EvalResult.source`` says which were):

    - ``data`` has a ``test/`` folder (``train/`` + ``test/`` layout): every image in it.
    - ``data`` is the folder the checkpoint was trained on, or has split folders but no
      ``test/``: the test split exactly as training made it (same seed), so images the
      model trained on are never scored.
    - otherwise (a plain tree of letter folders): every image in ``data``.

    Args:
        checkpoint: a ``.pt`` file or a run folder (its ``best.pt``).
        data: an image tree, see :func:`lettercnn.data.load_splits`.
        batch_size: images per forward pass.
        device: "auto", "cpu" or "cuda".

    Returns:
        The scores, with ``source`` set.

    Raises:
        FileNotFoundError: no checkpoint or no data folder.
        ValueError: not a lettercnn checkpoint; a bad image tree; a bad device.
    """
    from lettercnn.nn.model import LetterCNN, load_checkpoint, resolve_checkpoint

    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    file = resolve_checkpoint(checkpoint)
    payload = load_checkpoint(file)
    target = resolve_device(device)
    model = LetterCNN.from_payload(payload, file)
    if model.config.num_classes != NUM_CLASSES:
        raise ValueError(
            f"{file} scores {model.config.num_classes} classes; "
            f"the letters are {NUM_CLASSES} ({''.join(LETTERS)})"
        )
    dataset, source = _evaluation_set(Path(data), payload.get("train_config"))
    result = evaluate(model.to(target), dataset, target, batch_size=batch_size)
    return dataclasses.replace(result, source=source)


def _evaluation_set(root: Path, train_config: Mapping[str, Any] | None) -> tuple[Dataset, str]:
    """The images of ``root`` that :func:`evaluate_checkpoint` scores, and a line saying which."""
    from lettercnn import data as datasets
    from lettercnn.data.imagetree import split_alias

    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist or is not a folder")
    splits = {split_alias(entry.name): entry for entry in root.iterdir() if entry.is_dir()}
    if "test" in splits:
        folder = datasets.LetterFolder(splits["test"])
        return folder, f"all {len(folder)} images in {splits['test']}"
    trained = TrainConfig.from_dict(train_config) if train_config else None
    trained_here = trained is not None and trained.data is not None and Path(trained.data).resolve() == root.resolve()
    if trained_here or set(splits) - {None}:
        held_out = datasets.load_splits(root, seed=trained.seed if trained else 0, augment=False)
        return held_out.test, f"the test split of {held_out.source}"
    folder = datasets.LetterFolder(root)
    return folder, f"all {len(folder)} images in {root}"
