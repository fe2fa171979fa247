"""The settings of a training run: :class:`TrainConfig`, its checks, and the settings a resumed run keeps.

Standard library only (no torch, no numpy): the command line imports this module for its
option defaults and choices, and reads a run's ``config.json`` with it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from lettercnn.runs import CONFIG_FILE, RUNS_DIR, read_json, resolve_run

log = logging.getLogger(__name__)

Optimizer = Literal["adam", "sgd"]
Device = Literal["auto", "cpu", "cuda"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
DEVICES: tuple[str, ...] = get_args(Device)

# Weight decay when none is given. "adam" is AdamW, whose decoupled decay is scaled by
# the learning rate, so it takes a larger number than SGD's L2 term for a similar pull.
DEFAULT_WEIGHT_DECAY: dict[str, float] = {"adam": 1e-2, "sgd": 5e-4}
# Settings a resumed run may change: they change how the run computes, not what.
RESUME_OVERRIDES = ("device", "workers")
# Settings that a resumed run takes from its folder rather than from the config
# (world_size must match the processes it resumes in: lettercnn.training.distributed).
RESUME_IGNORED = ("name", "runs_dir", "world_size")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved as the run's ``config.json``.

    The defaults train the default model on the built-in synthetic set (half of it
    photo-like scenes, plus images of no letter) within 20 minutes on a 2-core CPU
    (measured: 8 min 19 s for the whole `letters train`, 88.9% on its test split; the
    shipped model is the same recipe with 2,500 per letter and 12 epochs).
    """

    # An ImageFolder root (see lettercnn.data.load_splits). None: the built-in synthetic
    # set, so that `letters train` works on a fresh machine with no download.
    data: str | None = None
    # Synthetic images per letter (ignored with `data`): 26 x 400 = 10,400 images, 8,320 to
    # train on (9,568 with the images of no letter). Training runs at ~215 images/s on 2
    # idle cores, so 10 epochs take ~8 minutes, well inside 20 on a slower machine.
    per_letter: int = 400
    # Passes over the training split. Measured with these defaults: val accuracy 64% after
    # epoch 1, 83% after 5, 88% at 9 as OneCycle anneals; test 88.9%, 8 min 19 s in all.
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
    runs_dir: str = RUNS_DIR
    # Extra .ttf/.otf fonts for the synthetic set.
    fonts_dir: str | None = None
    # Weights to start from (a checkpoint or a run folder): fine-tuning, e.g. the shipped
    # model's run on new letters. The optimizer and the schedule start fresh; the
    # checkpoint's BatchNorm setting must match. None: random initial weights.
    init: str | None = None
    # Images of no letter (blank pages, signs, scribbles, several or cut-off letters)
    # added to the training split, as a share of it, with the target "uniform"
    # (outlier exposure, lettercnn.nn.losses): what lets the model say "?". 0 turns it off.
    negatives: float = 0.15
    # Weight of the non-letters' loss term; 0.5 as in Hendrycks et al. (2019).
    outlier_weight: float = 0.5
    # Processes the run trains in (torchrun, `letters train --nproc`): set by the run, not
    # chosen here. batch_size stays the global batch; BatchNorm statistics depend on it.
    world_size: int = 1

    def __post_init__(self) -> None:
        for field in ("data", "runs_dir", "fonts_dir", "init"):
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
    positive = {
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "per_letter": config.per_letter,
        "world_size": config.world_size,
    }
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


def default_run_name(config: TrainConfig) -> str:
    """The run name that says the configuration, e.g. ``bn-dropout0.3`` or ``nobn-dropout0``."""
    return f"{'bn' if config.batch_norm else 'nobn'}-dropout{config.dropout:g}"


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
    saved = TrainConfig.from_dict(read_json(config_file))
    return resumed_config(saved, overrides, run_dir)


def resumed_config(saved: TrainConfig, overrides: Mapping[str, Any], run_dir: Path) -> TrainConfig:
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
