"""The classic three-way comparison of this network: BatchNorm and dropout on and off.

``run_experiments`` trains three runs with everything else equal and compares them::

    runs/experiments/            a new folder per call (experiments-2, -3 ... never overwrite)
        nobn-dropout0/           (a) no BatchNorm, no dropout    -- ordinary run folders
        bn-dropout0/             (b) BatchNorm                      (lettercnn.training)
        bn-dropout0.3/           (c) BatchNorm + dropout 0.3
        comparison.json          one row per run: test accuracy and loss, best epoch,
        comparison.md            final train/val losses, time
        config.json              the settings the three runs share (for resume)
        loss_curves.png          the three runs' train and val losses overlaid, and val accuracy

A stopped comparison continues with ``resume``: finished runs are read back, a run
with a ``last.pt`` resumes from it, a missing one starts.

torch and matplotlib are imported inside the functions that need them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lettercnn.fileio import write_json, write_text
from lettercnn.runs import (
    CONFIG_FILE,
    LAST_CHECKPOINT,
    METRICS_FILE,
    EpochRecord,
    make_run_dir,
    read_history,
    read_json,
)
from lettercnn.training.config import TrainConfig, default_run_name
from lettercnn.training.loop import Callbacks, fit
from lettercnn.training.plots import save_figure

# The shared settings of the three runs, so that a stopped comparison resumes with them.
BASE_CONFIG = "config.json"
COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"
LOSS_CURVES = "loss_curves.png"
DEFAULT_DIR_NAME = "experiments"
# The dropout of variant (c), as in the original study.
STUDY_DROPOUT = 0.3


@dataclasses.dataclass(frozen=True)
class Variant:
    """One arm of the comparison.

    Attributes:
        key: its letter in the study, "a", "b" or "c".
        title: what it is, in words.
        batch_norm: BatchNorm in every layer.
        dropout: dropout probability.
    """

    key: str
    title: str
    batch_norm: bool
    dropout: float

    def config(self, base: TrainConfig, runs_dir: Path) -> TrainConfig:
        """``base`` with this variant's settings, in its own run folder under ``runs_dir``."""
        name = default_run_name(dataclasses.replace(base, batch_norm=self.batch_norm, dropout=self.dropout))
        return dataclasses.replace(
            base, batch_norm=self.batch_norm, dropout=self.dropout, name=name, runs_dir=str(runs_dir)
        )


VARIANTS = (
    Variant("a", "no BatchNorm, no dropout", batch_norm=False, dropout=0.0),
    Variant("b", "BatchNorm", batch_norm=True, dropout=0.0),
    Variant("c", f"BatchNorm + dropout {STUDY_DROPOUT:g}", batch_norm=True, dropout=STUDY_DROPOUT),
)


@dataclasses.dataclass(frozen=True)
class ExperimentRow:
    """One finished run of the comparison.

    Attributes:
        variant: which arm.
        run_dir: its run folder.
        test_accuracy: accuracy of ``best.pt`` on the test split, 0..1.
        test_loss: its mean cross-entropy on the test split.
        best_epoch: the epoch kept as ``best.pt``.
        best_val_acc: its validation accuracy.
        final_train_loss: mean training loss of the last epoch.
        final_val_loss: validation loss after the last epoch.
        wall_seconds: training and test time.
        history: every epoch's record.
    """

    variant: Variant
    run_dir: Path
    test_accuracy: float
    test_loss: float
    best_epoch: int
    best_val_acc: float
    final_train_loss: float
    final_val_loss: float
    wall_seconds: float
    history: list[EpochRecord]

    @classmethod
    def from_folder(cls, variant: Variant, run_dir: Path) -> ExperimentRow:
        """The row of a finished run folder (its history.json and metrics.json).

        Raises:
            ValueError: the folder's files are not a finished run's.
        """
        try:
            history = read_history(run_dir)
            metrics = read_json(run_dir / METRICS_FILE)
            return cls(
                variant=variant,
                run_dir=run_dir,
                test_accuracy=float(metrics["test"]["accuracy"]),
                test_loss=float(metrics["test"]["loss"]),
                best_epoch=int(metrics["best_epoch"]),
                best_val_acc=float(metrics["best_val_accuracy"]),
                final_train_loss=history[-1].train_loss,
                final_val_loss=history[-1].val_loss,
                wall_seconds=float(metrics["wall_seconds"]),
                history=history,
            )
        except (KeyError, TypeError, IndexError) as error:
            raise ValueError(f"{run_dir} is not a finished run: {error!r} missing from its files") from error

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (without the per-epoch history)."""
        return {
            "variant": self.variant.key,
            "title": self.variant.title,
            "batch_norm": self.variant.batch_norm,
            "dropout": self.variant.dropout,
            "run": str(self.run_dir),
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_val_acc,
            "final_train_loss": self.final_train_loss,
            "final_val_loss": self.final_val_loss,
            "epochs": len(self.history),
            "wall_seconds": self.wall_seconds,
        }


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The finished comparison.

    Attributes:
        out_dir: the experiments folder.
        rows: one per variant, in the order (a), (b), (c).
        files: the comparison files written (json, markdown, figure).
    """

    out_dir: Path
    rows: list[ExperimentRow]
    files: list[Path]


def run_experiments(
    base: TrainConfig | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    callbacks: Callable[[Variant], Callbacks] | None = None,
) -> Comparison:
    """Train the three variants with ``base``'s other settings and compare them.

    Args:
        base: data, epochs, seed, device... shared by the three runs; its ``batch_norm``,
            ``dropout``, ``name`` and ``runs_dir`` are replaced per variant. None: the defaults.
        out: the experiments folder to create; if it exists, ``out-2``, ``out-3``...
            Default: ``<base.runs_dir>/experiments``.
        resume: an experiments folder to finish instead, with the settings it was
            started with (its ``config.json``); of ``base`` only the device is used.
        callbacks: ``callbacks(variant)`` gives the progress hooks of that variant's run.

    Returns:
        The comparison, also written to ``comparison.json``, ``comparison.md`` and
        ``loss_curves.png`` in the experiments folder.

    Raises:
        FileNotFoundError: ``resume`` is not a folder.
        ValueError: invalid settings; a run folder that is not a run.
        TrainingInterrupted: Ctrl-C; finished runs and the stopped run's ``last.pt`` are kept.
    """
    if resume is not None:
        out_dir = Path(resume)
        base = _saved_base(out_dir, device=base.device if base else None)
    else:
        base = base or TrainConfig()
        target = Path(out) if out is not None else Path(base.runs_dir) / DEFAULT_DIR_NAME
        out_dir = make_run_dir(target.parent, target.name)
        write_json(out_dir / BASE_CONFIG, base.to_dict())
    make_callbacks = callbacks or (lambda _variant: Callbacks())
    rows = [_run_variant(variant, base, out_dir, make_callbacks(variant)) for variant in VARIANTS]
    files = write_comparison(rows, out_dir)
    return Comparison(out_dir=out_dir, rows=rows, files=files)


def _saved_base(out_dir: Path, device: str | None) -> TrainConfig:
    """The shared settings an experiments folder was started with (``device`` may change).

    Raises:
        FileNotFoundError: not a folder.
        ValueError: no readable ``config.json`` in it.
    """
    if not out_dir.is_dir():
        raise FileNotFoundError(f"experiments folder not found: {out_dir}")
    saved = TrainConfig.from_dict(read_json(out_dir / BASE_CONFIG))
    return saved if device is None else dataclasses.replace(saved, device=device)


def _run_variant(variant: Variant, base: TrainConfig, out_dir: Path, callbacks: Callbacks) -> ExperimentRow:
    """Train (or finish, or read back) one variant's run in ``out_dir``."""
    config = variant.config(base, out_dir)
    run_dir = out_dir / str(config.name)
    if not (run_dir / METRICS_FILE).is_file():
        if (run_dir / LAST_CHECKPOINT).is_file():
            fit(resume=run_dir, callbacks=callbacks)
        else:
            _discard_unstarted(run_dir)
            fit(config, callbacks=callbacks)
    return ExperimentRow.from_folder(variant, run_dir)  # what the run wrote, whether trained now or before


def _discard_unstarted(run_dir: Path) -> None:
    """Remove a run folder stopped before its first checkpoint (it holds at most config.json).

    Raises:
        ValueError: the folder holds anything else, so it is not ours to remove.
    """
    if not run_dir.exists():
        return
    (run_dir / CONFIG_FILE).unlink(missing_ok=True)
    try:
        run_dir.rmdir()
    except OSError as error:
        raise ValueError(f"{run_dir} holds files but no {LAST_CHECKPOINT}; move it away to rerun") from error


def write_comparison(rows: Sequence[ExperimentRow], out_dir: Path) -> list[Path]:
    """Write ``comparison.json``, ``comparison.md`` and ``loss_curves.png`` (atomically).

    Args:
        rows: the finished runs.
        out_dir: where to write.

    Returns:
        The files written.
    """
    json_file, md_file, figure_file = out_dir / COMPARISON_JSON, out_dir / COMPARISON_MD, out_dir / LOSS_CURVES
    write_json(json_file, {"runs": [row.to_dict() for row in rows]})
    write_text(md_file, comparison_markdown(rows))
    save_loss_curves(rows, figure_file)
    return [json_file, md_file, figure_file]


def comparison_markdown(rows: Sequence[ExperimentRow]) -> str:
    """The comparison as a Markdown table, one row per run."""
    lines = [
        "# BatchNorm and dropout: three runs compared",
        "",
        "| variant | run | test accuracy | test loss | best epoch (val acc) | final train loss | final val loss | time |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| ({row.variant.key}) {row.variant.title} | `{row.run_dir.name}` | {row.test_accuracy:.1%} "
            f"| {row.test_loss:.4f} | {row.best_epoch} ({row.best_val_acc:.1%}) | {row.final_train_loss:.4f} "
            f"| {row.final_val_loss:.4f} | {row.wall_seconds:.0f} s |"
        )
    lines += ["", f"Loss curves: `{LOSS_CURVES}`. Losses are mean cross-entropy (nats per image).", ""]
    return "\n".join(lines)


def save_loss_curves(rows: Sequence[ExperimentRow], path: Path) -> None:
    """One figure: each run's train (solid) and val (dashed) loss, and val accuracy.

    Args:
        rows: the runs to overlay.
        path: the PNG to write.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(11, 4.5), layout="constrained")
    loss_axes, acc_axes = figure.subplots(1, 2)
    for index, row in enumerate(rows):
        colour = f"C{index}"
        epochs = [record.epoch for record in row.history]
        label = f"({row.variant.key}) {row.variant.title}"
        loss_axes.plot(epochs, [r.train_loss for r in row.history], "-o", color=colour, label=f"{label}: train")
        loss_axes.plot(epochs, [r.val_loss for r in row.history], "--s", color=colour, label=f"{label}: val")
        acc_axes.plot(epochs, [100 * r.val_acc for r in row.history], "-o", color=colour, label=label)
    loss_axes.set(
        xlabel="epoch", ylabel="cross-entropy loss (nats)", title="Train (solid) and validation (dashed) loss"
    )
    acc_axes.set(xlabel="epoch", ylabel="validation accuracy (%)", title="Validation accuracy")
    for axes in (loss_axes, acc_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    save_figure(figure, path)
