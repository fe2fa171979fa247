"""The figures of a run, and the one PNG writer every figure of the tool goes through.

matplotlib's object API only (no pyplot: no GUI backend, no global state), imported
inside the functions; the report (:mod:`lettercnn.report.figures`) and the experiments
write their figures with :func:`save_figure` too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lettercnn.fileio import atomic_path
from lettercnn.labels import LETTERS, NUM_CLASSES
from lettercnn.runs import EpochRecord

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.figure import Figure

# Resolution of every PNG the tool writes.
PLOT_DPI = 120


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
