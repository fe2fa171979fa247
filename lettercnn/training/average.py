"""Weight averaging (a "model soup", Wortsman et al. 2022): one model from several runs.

Runs fine-tuned from one start (``letters train --init RUN`` with other seeds) stay in
one basin of the loss, and the mean of their weights often reads better than any one
of them, at no cost when reading: it is one model of the same size. Runs trained from
different random starts do not average (their channels are in another order); the
table :func:`average_runs` returns shows each run's accuracy beside the average's, so
such a soup is seen at once.

BatchNorm's running statistics are averaged with the weights. The new run folder
holds ``best.pt``, ``config.json`` (the first run's settings: its validation and test
splits are the ones scored, and the ones ``letters export`` calibrates on) and
``metrics.json`` (with the runs averaged and their accuracies).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from lettercnn import data as datasets
from lettercnn.data.parallel import Progress
from lettercnn.fileio import write_json
from lettercnn.nn.checkpoint import (
    DATA_SOURCE,
    EPOCH,
    INPUT_SPEC,
    LABELS,
    MODEL_CONFIG,
    STATE_DICT,
    TRAIN_CONFIG,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from lettercnn.nn.model import LetterCNN
from lettercnn.runs import BEST_CHECKPOINT, CONFIG_FILE, CONFUSION_PLOT, METRICS_FILE, make_run_dir
from lettercnn.training.evaluate import EvalResult, evaluate, held_out, resolve_device
from lettercnn.training.plots import save_confusion_plot

# The keys of a checkpoint's model config that must agree (the convolution is how it
# runs, not what it computes).
SAME_MODEL = ("num_classes", "batch_norm", "dropout")


@dataclasses.dataclass(frozen=True)
class Scored:
    """One model's validation and test accuracy on the first run's splits."""

    name: str
    val_accuracy: float
    test_accuracy: float


@dataclasses.dataclass(frozen=True)
class AverageResult:
    """What :func:`average_runs` made.

    Attributes:
        run_dir: the new run folder.
        runs: each run averaged, scored like the average.
        average: the average's scores (its test result in full).
        test: the average's test result.
        source: which images were scored.
    """

    run_dir: Path
    runs: list[Scored]
    average: Scored
    test: EvalResult
    source: str


def average_weights(payloads: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The mean of the checkpoints' weights (float64 sums, the first's dtypes); counters take the largest.

    Args:
        payloads: checkpoint payloads (:func:`lettercnn.nn.checkpoint.load_checkpoint`).
        names: what to call each in an error.

    Raises:
        ValueError: fewer than two, or a checkpoint of another model (BatchNorm,
            dropout, classes, input or weights' shapes).
    """
    if len(payloads) < 2:
        raise ValueError(f"averaging needs two runs or more, got {len(payloads)}")
    first = payloads[0]
    for payload, name in zip(payloads[1:], names[1:]):
        for key in SAME_MODEL:
            if payload[MODEL_CONFIG].get(key) != first[MODEL_CONFIG].get(key):
                raise ValueError(
                    f"{name} has {key} {payload[MODEL_CONFIG].get(key)!r} and {names[0]} "
                    f"{first[MODEL_CONFIG].get(key)!r}; only runs of one model average"
                )
        for key in (INPUT_SPEC, LABELS):
            if payload.get(key) != first.get(key):
                raise ValueError(f"{name} has other {key} than {names[0]}; only runs of one model average")
        shapes = {key: tuple(value.shape) for key, value in payload[STATE_DICT].items()}
        if shapes != {key: tuple(value.shape) for key, value in first[STATE_DICT].items()}:
            raise ValueError(f"{name} holds other weights than {names[0]}; only runs of one model average")
    averaged = {}
    for key, value in first[STATE_DICT].items():
        stack = [payload[STATE_DICT][key] for payload in payloads]
        if value.is_floating_point():
            averaged[key] = (sum(t.double() for t in stack) / len(stack)).to(value.dtype)
        else:  # BatchNorm's num_batches_tracked
            averaged[key] = torch.stack(stack).max()
    return averaged


def average_runs(
    sources: Sequence[str | os.PathLike[str]],
    runs_dir: str | os.PathLike[str],
    name: str,
    *,
    device: str = "auto",
    progress: Progress | None = None,
) -> AverageResult:
    """Average the weights of runs into a new run folder, scored beside them.

    Args:
        sources: run folders (their ``best.pt``) or ``.pt`` checkpoints, two or more.
        runs_dir: where the new run folder goes.
        name: its name (``name-2`` ... if taken).
        device: "auto", "cpu" or "cuda", to score on.
        progress: called as ``progress(done, total)`` while the splits are rendered.

    Returns:
        The folder and the scores.

    Raises:
        FileNotFoundError: a checkpoint is missing.
        ValueError: a file is not a lettercnn checkpoint, the runs are of different
            models, or the first says nothing of its data.
    """
    files = [resolve_checkpoint(source) for source in sources]
    payloads = [load_checkpoint(file) for file in files]
    # Built before anything is rendered: checks each holds a LetterCNN's weights.
    models = [LetterCNN.from_payload(payload, file) for payload, file in zip(payloads, files)]
    names = [str(file) for file in files]
    weights = average_weights(payloads, names)
    first = payloads[0]
    target = resolve_device(device)
    splits = {split: held_out(split, first.get(TRAIN_CONFIG), progress=progress) for split in ("val", "test")}
    sets = {split: datasets.GlyphSet(s.glyphs, s.targets, None, s.source) for split, s in splits.items()}

    def score(model: LetterCNN, label: str) -> tuple[Scored, EvalResult]:
        model = model.to(target)
        val, test = (evaluate(model, sets[split], target) for split in ("val", "test"))
        return Scored(label, val.accuracy, test.accuracy), test

    runs = [score(model, label)[0] for model, label in zip(models, names)]
    soup = {**first, STATE_DICT: weights}
    average, test = score(LetterCNN.from_payload(soup, "average"), "average")
    run_dir = make_run_dir(runs_dir, name)
    soup.pop(EPOCH, None)  # no one epoch made it
    soup.update(val_acc=average.val_accuracy, averaged_from=names)
    save_checkpoint(run_dir / BEST_CHECKPOINT, soup)
    write_json(run_dir / CONFIG_FILE, dict(first.get(TRAIN_CONFIG) or {}))
    write_json(
        run_dir / METRICS_FILE,
        {
            "test": test.to_dict(),
            "best_val_accuracy": average.val_accuracy,
            "averaged_from": [dataclasses.asdict(run) for run in runs],
            "device": target,
            "data_source": first.get(DATA_SOURCE, ""),
            "sizes": {split: len(s.targets) for split, s in splits.items()},
        },
    )
    save_confusion_plot(
        test.confusion, run_dir / CONFUSION_PLOT, title=f"{run_dir.name}: test accuracy {test.accuracy:.2%}"
    )
    return AverageResult(run_dir, runs, average, test, splits["test"].source)


__all__ = ["AverageResult", "Scored", "average_runs", "average_weights"]
