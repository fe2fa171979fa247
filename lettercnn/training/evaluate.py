"""Scoring a model on labelled letters: the figures, the held-out images, the device.

:func:`evaluate` scores a model on a dataset; :func:`evaluate_checkpoint` a checkpoint on
an image tree. :func:`held_out` is the one loader of the images a trained model is scored
on (eval, the report, quantisation, ``letters bench``), so that images the model trained
on are never scored.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from lettercnn import data as datasets
from lettercnn.bench import TORCH_IMG2COL, TORCH_NN, InferencePath, TorchPaths
from lettercnn.data.imagetree import LabelledGlyphs, read_letter_tree, split_alias
from lettercnn.data.parallel import Progress
from lettercnn.labels import LETTERS, NUM_CLASSES
from lettercnn.nn.checkpoint import TRAIN_CONFIG, load_checkpoint, resolve_checkpoint
from lettercnn.nn.model import LetterCNN
from lettercnn.runs import default_checkpoint
from lettercnn.runtime import EVAL_BATCH, open_session
from lettercnn.training.config import DEVICES, TrainConfig

# Letters listed as the worst, and confusions as the most frequent, in a result.
WORST_CLASSES = 5
# The held-out splits, and what they are called in a source line.
Split = Literal["val", "test"]
SPLIT_NAMES: dict[str, str] = {"val": "validation", "test": "test"}


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
        calibration: how well the confidence matches the accuracy on these images,
            before and after temperature scaling (:func:`calibration_scores`); set by
            :func:`evaluate_checkpoint`.
    """

    accuracy: float
    loss: float
    per_class: dict[str, float | None]
    confusion: list[list[int]]
    count: int
    source: str = ""
    calibration: dict[str, Any] | None = None

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
            "calibration": self.calibration,
        }


def resolve_device(device: str) -> str:
    """The torch device to use for a ``device`` setting.

    Args:
        device: "auto" (CUDA if available, else CPU), "cpu" or "cuda".

    Returns:
        "cpu" or "cuda".

    Raises:
        ValueError: an unknown device, or "cuda" where torch sees no GPU.
    """
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA GPU; use 'cpu' or 'auto'")
    return device


def evaluate(
    model: LetterCNN,
    data: Dataset | DataLoader,
    device: str | torch.device | None = None,
    *,
    batch_size: int = EVAL_BATCH,
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


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    batch_size: int = EVAL_BATCH,
    device: str = "auto",
) -> EvalResult:
    """Score a checkpoint on a folder of letter images.

    Which images are scored (``EvalResult.source`` says which were): the held-out
    test images of ``data``, see :func:`held_out`; never an image the model trained on.

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
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    file = resolve_checkpoint(checkpoint)
    payload = load_checkpoint(file)
    target = resolve_device(device)
    model = LetterCNN.from_payload(payload, file)
    if model.config.num_classes != NUM_CLASSES:
        raise ValueError(
            f"{file} scores {model.config.num_classes} classes; the letters are {NUM_CLASSES} ({''.join(LETTERS)})"
        )
    images = held_out("test", payload.get(TRAIN_CONFIG), data)
    dataset = datasets.GlyphSet(images.glyphs, images.targets, None, images.source)
    result = evaluate(model.to(target), dataset, target, batch_size=batch_size)
    scores = calibration_scores(model, payload.get(TRAIN_CONFIG), images, data, target, batch_size)
    return dataclasses.replace(result, source=images.source, calibration=scores)


def calibration_scores(
    model: LetterCNN,
    train_config: Mapping[str, Any] | None,
    scored: LabelledGlyphs,
    data: str | os.PathLike[str] | None,
    device: str,
    batch_size: int = EVAL_BATCH,
) -> dict[str, Any]:
    """ECE (15 bins) and NLL of the scored images at temperature 1 and at the temperature
    fitted on the run's validation split (what ``letters export`` writes into the model).

    Without a validation split to fit on (a bare checkpoint, a run too small), only the
    temperature-1 figures are given.
    """
    from lettercnn import calibration

    scored_logits = model_logits(model, scored.glyphs, device, batch_size)
    before = calibration.softmax(scored_logits)
    out: dict[str, Any] = {
        "ece_before": calibration.ece(before, scored.targets),
        "nll_before": calibration.nll(before, scored.targets),
    }
    try:
        val = held_out("val", train_config, data)
    except (ValueError, FileNotFoundError) as err:
        return out | {"temperature": None, "fitted_on": f"nothing: {err}"}
    if not len(val.targets):
        return out | {"temperature": None, "fitted_on": f"nothing: no images in {val.source}"}
    temperature = calibration.fit_temperature(model_logits(model, val.glyphs, device, batch_size), val.targets)
    after = calibration.softmax(scored_logits, temperature)
    return out | {
        "temperature": temperature,
        "fitted_on": val.source,
        "ece_after": calibration.ece(after, scored.targets),
        "nll_after": calibration.nll(after, scored.targets),
    }


def model_logits(model: LetterCNN, glyphs: np.ndarray, device: str, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """The model's logits (n, classes) for canonical uint8 glyphs, in eval mode."""
    from lettercnn.preprocess import normalize

    was_training = model.training
    model.eval()
    rows = []
    try:
        with torch.inference_mode():
            for start in range(0, len(glyphs), batch_size):
                inputs = torch.from_numpy(normalize(glyphs[start : start + batch_size])).to(device)
                rows.append(model(inputs).float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(rows) if rows else np.zeros((0, NUM_CLASSES), np.float32)


def held_out(
    split: Split,
    train_config: Mapping[str, Any] | None,
    data: str | os.PathLike[str] | None = None,
    *,
    progress: Progress | None = None,
) -> LabelledGlyphs:
    """The labelled images a trained model is scored on: the one loader of held-out images.

    Never an image the model trained on. With ``data`` (an image tree):

    - a tree with its own ``test/`` (or ``val/``) folder: every image in that folder;
    - the tree the model trained on, or a tree split into ``train/`` ... without that
      folder: the split exactly as training made it (same seed);
    - otherwise (a plain tree of letter folders, new to the model): every image in it.

    Without ``data``, the run's own split: its image tree's (as above), or its synthetic
    letters, re-rendered from the same seed and sample stream (the images
    ``metrics.json`` scored, for ``"test"``).

    Args:
        split: ``"val"`` or ``"test"``.
        train_config: the checkpoint's training config; None for a bare checkpoint.
        data: an image tree; None for the run's own data.
        progress: called as ``progress(done, total)`` while images are rendered or decoded.

    Returns:
        The images (possibly none: a synthetic run too small for the split), their
        classes, and a line saying which they are.

    Raises:
        FileNotFoundError: the data folder does not exist.
        ValueError: no ``data`` and no ``train_config`` saying what the model trained on;
            a bad image tree.
    """
    trained = TrainConfig.from_dict(train_config) if train_config else None
    if data is None:
        if trained is None:
            raise ValueError("the checkpoint does not say what data it was trained on; pass --data DIR")
        if trained.data is None:
            return _synthetic_split(split, trained, progress)
        data = trained.data
    return _tree_split(split, Path(data), trained, progress)


def _synthetic_split(split: Split, trained: TrainConfig, progress: Progress | None) -> LabelledGlyphs:
    """A synthetic run's own split, rendered again."""
    letters = datasets.synthetic_split(
        split, trained.per_letter, seed=trained.seed, fonts_dir=trained.fonts_dir, progress=progress
    )
    per_letter = len(letters) // NUM_CLASSES
    source = f"the run's synthetic {SPLIT_NAMES[split]} split ({per_letter} per letter, seed {trained.seed})"
    return LabelledGlyphs(letters.glyphs, letters.targets, source)


def _tree_split(split: Split, root: Path, trained: TrainConfig | None, progress: Progress | None) -> LabelledGlyphs:
    """The held-out images of an image tree (see :func:`held_out`)."""
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist or is not a folder")
    layout = {split_alias(entry.name): entry for entry in root.iterdir() if entry.is_dir()}
    if split in layout:
        tree = read_letter_tree(layout[split], progress=progress)
        return tree.labelled(f"all {len(tree.samples)} images in {layout[split]}")
    trained_here = trained is not None and trained.data is not None and Path(trained.data).resolve() == root.resolve()
    if trained_here or set(layout) - {None}:
        splits = datasets.load_splits(root, seed=trained.seed if trained else 0, augment=False, progress=progress)
        part = getattr(splits, split)
        return LabelledGlyphs(part.glyphs, part.targets, f"the {SPLIT_NAMES[split]} split of {splits.source}")
    tree = read_letter_tree(root, progress=progress)
    return tree.labelled(f"all {len(tree.samples)} images in {root}")


def torch_paths(checkpoint: str | os.PathLike[str]) -> TorchPaths:
    """A checkpoint in torch eager mode, with our img2col convolution and with ``nn.Conv2d``.

    What the training side lends ``letters bench`` for its torch rows: the same weights
    as the exported model, timed beside it.

    Args:
        checkpoint: a ``.pt`` file or a run folder (its ``best.pt``).

    Returns:
        ``paths(threads)``: the two paths, with torch set to ``threads`` threads.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: not a lettercnn checkpoint.
    """
    file = resolve_checkpoint(checkpoint)
    models = [
        (name, LetterCNN.from_checkpoint(file, conv=conv))
        for name, conv in ((TORCH_IMG2COL, "img2col"), (TORCH_NN, "torch"))
    ]
    size = file.stat().st_size

    def paths(threads: int) -> list[InferencePath]:
        torch.set_num_threads(threads)
        return [InferencePath(name, _eager(model), size) for name, model in models]

    return paths


def _eager(model: LetterCNN) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(inputs) -> logits`` of a model in eval mode, under inference_mode."""

    def predict(inputs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(inputs)).numpy()

    return predict


def lend_to_bench(
    checkpoint: str | os.PathLike[str] | None, model: str | os.PathLike[str], data: str | os.PathLike[str] | None
) -> tuple[TorchPaths | None, LabelledGlyphs | None, list[str]]:
    """What the training side lends ``letters bench``: the torch rows, and the model's own validation split.

    Args:
        checkpoint: the checkpoint of the model's weights; None: the default run
            (:func:`lettercnn.runs.default_checkpoint`), if there is one.
        model: the fp32 ``.onnx`` (its metadata says which run, and so which validation split).
        data: the tree the accuracy column is scored on instead, if any (then no split is rebuilt).

    Returns:
        The torch paths (None without a checkpoint), the validation split (None with
        ``data``), and a note for each part left out.

    Raises:
        FileNotFoundError: a checkpoint or model given that is not there.
        ValueError: not a lettercnn checkpoint; an unusable model.
    """
    from lettercnn.quantize import validation_inputs

    paths, notes = None, []
    try:
        paths = torch_paths(default_checkpoint(checkpoint))
    except FileNotFoundError as missing:
        if checkpoint is not None:
            raise
        notes.append(f"torch rows: skipped, {missing}")
    if data is not None:
        return paths, None, notes
    return paths, validation_inputs(dict(open_session(model).get_modelmeta().custom_metadata_map)), notes
