"""Training: fit a LetterCNN and keep the run in its own folder (see :mod:`lettercnn.runs`).

Under torchrun (or ``letters train --nproc N``) the same run trains in N processes with
DistributedDataParallel; :mod:`lettercnn.training.distributed` says what each one does.

``last.pt`` is written at the end of every epoch (and once before the first), so a
Ctrl-C never needs to write anything: the run keeps the last *finished* epoch, and the
half-done one is dropped, because a mid-epoch state could not resume exactly.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from lettercnn import __version__, data
from lettercnn.data import Splits
from lettercnn.errors import NonFiniteLossError, RunFinishedError, TrainingInterrupted
from lettercnn.fileio import remove_stale_temps, write_json
from lettercnn.labels import LETTERS
from lettercnn.nn.checkpoint import TRAIN_CONFIG, checkpoint_payload, load_checkpoint, save_checkpoint
from lettercnn.nn.losses import letter_loss
from lettercnn.nn.model import LetterCNN
from lettercnn.preprocess import DEFAULT_SPEC
from lettercnn.runs import (
    BEST_CHECKPOINT,
    CONFIG_FILE,
    CONFUSION_PLOT,
    LAST_CHECKPOINT,
    LOSS_PLOT,
    METRICS_FILE,
    EpochRecord,
    make_run_dir,
    resolve_run,
    write_history,
)
from lettercnn.runtime import EVAL_BATCH
from lettercnn.threads import SlowdownWatch
from lettercnn.training import distributed
from lettercnn.training.config import TrainConfig, default_run_name, resume_config, resumed_config
from lettercnn.training.distributed import World
from lettercnn.training.evaluate import EvalResult, evaluate, resolve_device
from lettercnn.training.plots import save_confusion_plot, save_loss_plot

log = logging.getLogger(__name__)

SGD_MOMENTUM = 0.9
# OneCycle: warm up over the first 15% of steps from lr/25 to lr, then anneal (cosine)
# to lr/2500. It tolerates a high peak lr and ends in a sharp minimum, which is how a
# short CPU run gets its last percent.
ONECYCLE_WARMUP = 0.15
ONECYCLE_DIV_FACTOR = 25.0
ONECYCLE_FINAL_DIV_FACTOR = 100.0


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What a run is about to do; given to :attr:`Callbacks.on_start`."""

    run_dir: Path
    device: str
    data_source: str
    sizes: dict[str, int]
    start_epoch: int
    epochs: int
    threads: int
    processes: int = 1


def _ignore(*_args: Any) -> None:
    """The default callback: do nothing."""


def _log_warning(message: str) -> None:
    """The default warning callback: a logged warning."""
    log.warning("%s", message)


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
        on_warning: ``(message)`` for something the user should know mid-run, e.g.
            an epoch far slower than the first (:class:`lettercnn.threads.SlowdownWatch`).
    """

    on_data_progress: Callable[[int, int], None] = _ignore
    on_start: Callable[[RunInfo], None] = _ignore
    on_epoch_start: Callable[[int, int, int], None] = _ignore
    on_batch: Callable[[float, float, float], None] = _ignore
    on_epoch_end: Callable[[EpochRecord], None] = _ignore
    on_warning: Callable[[str], None] = _log_warning


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


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's (CPU and CUDA) random generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
    if config is None:
        config = TrainConfig() if resume is None else resume_config(resume)
    device = resolve_device(config.device)
    world = distributed.join(device)
    seed_everything(config.seed)
    given = config
    run_dir, config, splits, state, weights = distributed.from_main(
        world, lambda: _prepare(given, resume, world, callbacks.on_data_progress)
    )
    trainer = _Trainer(config, run_dir, splits, device, callbacks, world)
    if state is None:
        if weights is not None:
            trainer.start_from(weights)
        trainer.save_last()
    else:
        trainer.restore(state)
    return trainer.run()


def _prepare(
    config: TrainConfig, resume: str | os.PathLike[str] | None, world: World, progress: Callable[[int, int], None]
) -> tuple[Path, TrainConfig, Splits, dict[str, Any] | None, dict[str, torch.Tensor] | None]:
    """What rank 0 (or the only process) sets up: the run folder, its config, the data, the resumed state
    and the initial weights (``config.init``; checked before the data is rendered)."""
    state: dict[str, Any] | None = None
    weights: dict[str, torch.Tensor] | None = None
    if resume is None and config.init is not None:
        weights = initial_weights(config)
    if resume is not None:
        run_dir, state = _load_resume_state(resume)
        saved = TrainConfig.from_dict(state[TRAIN_CONFIG])
        distributed.check_world_size(run_dir, saved.world_size, world)
        config = resumed_config(saved, config.to_dict(), run_dir)
    else:
        config = dataclasses.replace(config, world_size=world.size)
    splits = _load_splits(config, progress)
    if resume is None:
        run_dir = make_run_dir(config.runs_dir, config.name or default_run_name(config))
        config = dataclasses.replace(config, name=run_dir.name)
        write_json(run_dir / CONFIG_FILE, config.to_dict())
    return run_dir, config, splits, state, weights


def initial_weights(config: TrainConfig) -> dict[str, torch.Tensor]:
    """The weights ``config.init`` names, checked against the model the config builds.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: not a lettercnn checkpoint (or not a LetterCNN's weights), or one with
            another BatchNorm setting.
    """
    assert config.init is not None
    trained = LetterCNN.from_checkpoint(config.init)  # checks its config and weights are a LetterCNN's
    saved = trained.config.batch_norm
    if saved != config.batch_norm:
        had, asked = ("with" if saved else "without"), ("--batch-norm" if config.batch_norm else "--no-batch-norm")
        raise ValueError(f"cannot start from {config.init}: it was trained {had} BatchNorm, this run asks {asked}")
    return trained.state_dict()


def _load_resume_state(run: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """The run folder and its ``last.pt`` payload; RunFinishedError if nothing is left to do."""
    run_dir, last = resolve_run(run)
    for stale in remove_stale_temps(run_dir):  # a run killed while writing leaves one
        log.info("removed %s, left by a write that was killed", stale.name)
    state = load_checkpoint(last)
    if "optimizer" not in state or TRAIN_CONFIG not in state:
        raise ValueError(f"{last} holds no training state to resume")
    epochs = int(state[TRAIN_CONFIG]["epochs"])
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
    splits: Splits, config: TrainConfig, device: str, generator: torch.Generator, world: World
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Train, val and test loaders.

    The training order is drawn from ``generator`` (one process) or from the seed and
    the epoch (DistributedSampler, each process its share), so a resume replays it.
    """
    common: dict[str, Any] = {"num_workers": config.workers, "pin_memory": device == "cuda"}
    batch_size = distributed.per_rank_batch(config.batch_size, world)
    if world.active:
        sampler = DistributedSampler(splits.train, world.size, world.rank, shuffle=True, seed=config.seed)
        shuffled: dict[str, Any] = {"sampler": sampler}
    else:
        shuffled = {"shuffle": True, "generator": generator}
    # Dropping a ragged last batch keeps BatchNorm away from a batch of one image.
    drop_last = math.ceil(len(splits.train) / world.size) > batch_size
    train = DataLoader(splits.train, batch_size=batch_size, drop_last=drop_last, **shuffled, **common)
    val = DataLoader(splits.val, batch_size=EVAL_BATCH, **common)
    test = DataLoader(splits.test, batch_size=EVAL_BATCH, **common)
    return train, val, test


def _make_optimizer(model: LetterCNN, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW for "adam", SGD with momentum 0.9 for "sgd"."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=SGD_MOMENTUM, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random state training draws from, as plain values (loadable with weights_only)."""
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

    def __init__(
        self, config: TrainConfig, run_dir: Path, splits: Splits, device: str, callbacks: Callbacks, world: World
    ) -> None:
        self.config, self.run_dir, self.splits, self.device, self.callbacks = config, run_dir, splits, device, callbacks
        self.world = world
        if not world.main:
            self.callbacks = Callbacks()  # rank 0 alone reports
        self.model = LetterCNN(batch_norm=config.batch_norm, dropout=config.dropout).to(device)
        self.net = distributed.wrap(self.model, device, world)  # what trains; self.model is what is saved
        self.model = getattr(self.net, "module", self.net)  # SyncBatchNorm on CUDA replaces the BN layers
        if world.rank:  # the weights are rank 0's (DDP sent them); the augmentation and dropout are this rank's own
            seed_everything(distributed.rank_seed(config.seed, world.rank))
        self.fail_check = distributed.failure_hook(world)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.train_loader, self.val_loader, self.test_loader = _loaders(splits, config, device, self.generator, world)
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
        self.slowdown = SlowdownWatch(torch.get_num_threads())

    def start_from(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Start from trained weights (``config.init``); optimizer and schedule stay fresh."""
        self.model.load_state_dict(weights)

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a ``last.pt`` payload: weights, optimizer, schedule, history, RNG."""
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = [EpochRecord(**record) for record in state["history"]]
        self.saved_epoch = int(state["epoch"])
        self.best_epoch = int(state["best_epoch"])
        self.best_val_acc = float(state["best_val_acc"])
        states = state["rng"]  # a list, one per process; one process (or a DDP run of an older version): a dict
        _set_rng_state(states[self.world.rank] if isinstance(states, list) else states, self.generator)

    def run(self) -> RunResult:
        """Train the remaining epochs, then score best.pt on the test split."""
        sizes = self.splits.sizes()
        if not self.world.main:
            return self._follow()
        info = RunInfo(
            self.run_dir, self.device, self.splits.source, sizes, self.saved_epoch, self.config.epochs,
            torch.get_num_threads(), self.world.size,
        )  # fmt: skip
        self.callbacks.on_start(info)
        try:
            for epoch in range(self.saved_epoch + 1, self.config.epochs + 1):
                self._epoch(epoch)
            return distributed.from_main(self.world, self._finish)
        except KeyboardInterrupt:
            raise TrainingInterrupted(self.run_dir, self.saved_epoch, self.config.epochs, self.world.size) from None

    def _follow(self) -> RunResult:
        """A rank other than 0: train its share of every epoch; rank 0 evaluates, writes and sends the result."""
        for epoch in range(self.saved_epoch + 1, self.config.epochs + 1):
            self._train_epoch(epoch)
            self.save_last()  # sends this rank's random state to rank 0's last.pt
        return distributed.from_main(self.world, self._finish)

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
            save_checkpoint(self.run_dir / BEST_CHECKPOINT, self._payload(epoch, val_acc=record.val_acc))
        self.save_last()
        write_history(self.run_dir, self.history)
        save_loss_plot(self.history, self.run_dir / LOSS_PLOT)
        self.callbacks.on_epoch_end(record)
        warning = self.slowdown.update(epoch, images_per_s)
        if warning is not None:
            self.callbacks.on_warning(warning)

    def _train_epoch(self, epoch: int) -> tuple[float, float, float, float]:
        """One pass over the training split; returns (loss, acc, images/s, last lr)."""
        self.net.train()
        if isinstance(self.train_loader.sampler, DistributedSampler):
            self.train_loader.sampler.set_epoch(epoch)  # a new order every epoch, the same on every rank
        loss_sum, correct, seen, lettered, lr = 0.0, 0, 0, 0, self.config.lr
        started = time.perf_counter()
        for batch, (images, labels) in enumerate(self.train_loader, start=1):
            self.fail_check(self.scheduler.last_epoch + 1)  # test-only; see distributed.failure_hook
            images = images.to(self.device, non_blocking=True)  # (b, 1, 32, 32), this rank's share
            labels = labels.to(self.device, non_blocking=True)  # (b,)
            logits = self.net(images)  # (b, 26)
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
            self.callbacks.on_batch(loss_sum / seen, accuracy, seen * self.world.size / (time.perf_counter() - started))
        # The epoch's figures over every rank's share (one process: unchanged).
        loss_sum, correct, seen, lettered = distributed.sum_over_ranks([loss_sum, correct, seen, lettered], self.world)
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
        """What every checkpoint of the run holds: model, input spec, config, labels, data, epoch."""
        payload = checkpoint_payload(self.model, DEFAULT_SPEC)  # both data sources canonicalise with it
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
        """Write last.pt (rank 0): everything needed to continue after the current epoch.

        Every process calls it (it gathers their random states); rank 0 writes."""
        states = distributed.gather(_rng_state(self.generator), self.world)
        if not self.world.main:
            return
        epoch = len(self.history)
        save_checkpoint(
            self.run_dir / LAST_CHECKPOINT,
            self._payload(
                epoch,
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                history=[dataclasses.asdict(r) for r in self.history],
                best_epoch=self.best_epoch,
                best_val_acc=self.best_val_acc,
                rng=states if self.world.active else states[0],
            ),
        )
        self.saved_epoch = epoch

    def _finish(self) -> RunResult:
        """Score best.pt on the test split; write metrics.json and confusion.png."""
        best = load_checkpoint(self.run_dir / BEST_CHECKPOINT, map_location=self.device)
        self.model.load_state_dict(best["state_dict"])
        started = time.perf_counter()
        test = evaluate(self.model, self.test_loader, self.device)
        wall_seconds = sum(r.seconds for r in self.history) + time.perf_counter() - started
        result = RunResult(
            self.run_dir,
            self.config,
            list(self.history),
            test,
            self.best_epoch,
            self.best_val_acc,
            self.device,
            self.splits.source,
            wall_seconds,
        )
        metrics = {
            "test": test.to_dict(),
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_val_acc,
            "epochs": len(self.history),
            "wall_seconds": wall_seconds,
            "device": self.device,
            "world_size": self.world.size,
            "data_source": self.splits.source,
            "sizes": self.splits.sizes(),
        }
        write_json(self.run_dir / METRICS_FILE, metrics)
        title = f"{self.run_dir.name}: test accuracy {test.accuracy:.2%}"
        save_confusion_plot(test.confusion, self.run_dir / CONFUSION_PLOT, title=title)
        return result
