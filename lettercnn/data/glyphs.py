"""In-memory datasets of canonical glyphs, and stratified splits of them.

Every dataset of the package ends as a :class:`GlyphSet`: canonical uint8 glyphs
(N, 32, 32), already through :func:`lettercnn.preprocess.canonical`, and their class
indices. An item is the glyph, augmented by ``transform`` (training only), then
normalised by :func:`lettercnn.preprocess.normalize`: ``(float32 tensor (1, 32, 32), int)``.
A uint8 array of 100,000 glyphs is 100 MB; EMNIST letters (145,600) fit easily.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from lettercnn import preprocess
from lettercnn.labels import LETTERS, NOT_A_LETTER, NUM_CLASSES

# A transform takes and returns a canonical uint8 glyph (size, size).
GlyphTransform = Callable[[np.ndarray], np.ndarray]


class GlyphSet(Dataset):
    """Canonical glyphs and labels held in memory.

    Args:
        glyphs: uint8 array (N, size, size), white glyph on black.
        targets: class indices (N,), 0..25 for A..Z, or ``NOT_A_LETTER`` (-1) for an
            image of no letter (a training negative).
        transform: applied to the uint8 glyph before normalisation (augmentation).
        name: a short description for logs and ``repr``.

    Raises:
        ValueError: arrays of the wrong shape, dtype or label range.
    """

    classes: tuple[str, ...] = LETTERS

    def __init__(
        self,
        glyphs: np.ndarray,
        targets: np.ndarray | Sequence[int],
        transform: GlyphTransform | None = None,
        name: str = "glyphs",
    ) -> None:
        size = preprocess.DEFAULT_SPEC.size
        targets = np.asarray(targets, dtype=np.int64)
        if glyphs.dtype != np.uint8 or glyphs.ndim != 3 or glyphs.shape[1:] != (size, size):
            raise ValueError(f"glyphs must be uint8 (N, {size}, {size}), got {glyphs.dtype} {glyphs.shape}")
        if targets.shape != (len(glyphs),):
            raise ValueError(f"targets must have shape ({len(glyphs)},), got {targets.shape}")
        if len(targets) and (targets.min() < NOT_A_LETTER or targets.max() >= NUM_CLASSES):
            raise ValueError(
                f"targets must lie in 0..{NUM_CLASSES - 1} (or {NOT_A_LETTER}: not a letter), "
                f"got {targets.min()}..{targets.max()}"
            )
        self.glyphs = glyphs
        self.targets = targets
        self.transform = transform
        self.name = name

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return glyph_item(self.glyphs[index], int(self.targets[index]), self.transform)

    def __repr__(self) -> str:
        augmented = "augmented" if self.transform is not None else "plain"
        return f"GlyphSet({self.name!r}, {len(self)} glyphs, {augmented})"

    @classmethod
    def empty(cls, name: str = "empty") -> GlyphSet:
        """A set with no items (a split that got nothing)."""
        size = preprocess.DEFAULT_SPEC.size
        return cls(np.zeros((0, size, size), dtype=np.uint8), np.zeros(0, dtype=np.int64), None, name)

    def subset(self, indices: np.ndarray | Sequence[int], transform: GlyphTransform | None = None) -> GlyphSet:
        """A new set holding the given items (copied), with its own transform."""
        picked = np.asarray(indices, dtype=np.int64)
        return GlyphSet(self.glyphs[picked], self.targets[picked], transform, self.name)

    def class_counts(self) -> np.ndarray:
        """Items per class, int64 (26,); negatives are not counted."""
        return np.bincount(self.targets[self.targets >= 0], minlength=NUM_CLASSES)

    def __add__(self, other: GlyphSet) -> GlyphSet:
        """Both sets' items in one (this set's transform and name)."""
        return GlyphSet(
            np.concatenate([self.glyphs, other.glyphs]),
            np.concatenate([self.targets, other.targets]),
            self.transform,
            f"{self.name} + {other.name}",
        )

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole set normalised, without augmentation: fast evaluation, no DataLoader.

        Returns:
            ``(inputs float32 (N, 1, size, size), targets int64 (N,))``.
        """
        return torch.from_numpy(preprocess.normalize(self.glyphs)), torch.from_numpy(self.targets.copy())


def glyph_item(glyph: np.ndarray, target: int, transform: GlyphTransform | None) -> tuple[torch.Tensor, int]:
    """One dataset item: augment the uint8 glyph, normalise, wrap as a tensor."""
    if transform is not None:
        glyph = transform(glyph)
    return torch.from_numpy(preprocess.normalize(glyph)), target


@dataclass(frozen=True)
class Splits:
    """Train, validation and test sets, and where they came from.

    Attributes:
        train: augmented when asked.
        val: never augmented.
        test: never augmented.
        source: one line for logs and model metadata, e.g.
            ``"data/letters: train/ + test/, val 10% of train (seed 0)"``.
    """

    train: GlyphSet
    val: GlyphSet
    test: GlyphSet
    source: str

    def sizes(self) -> dict[str, int]:
        """Items per split."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def check_fractions(**fractions: float) -> None:
    """Validate split fractions given by name.

    Raises:
        ValueError: a fraction outside [0, 1) or fractions summing to 1 or more.
    """
    for name, value in fractions.items():
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if sum(fractions.values()) >= 1.0:
        listed = " + ".join(f"{name} {value}" for name, value in fractions.items())
        raise ValueError(f"split fractions must leave something to train on: {listed} >= 1")


def stratified_split(targets: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split indices class by class, deterministically.

    Each part gets ``round(N * fraction)`` items in all, shared out between the classes
    in proportion to their sizes (largest remainders first, so small classes of a
    small set still feed val and test); each class keeps at least one item for the
    remainder (the training set).

    Args:
        targets: class index per item.
        fractions: share of each carved part, e.g. ``(0.1, 0.1)`` for val and test.
        seed: seed of the shuffle.

    Returns:
        ``[rest, part_1, part_2, ...]``: sorted index arrays, disjoint, covering all items.

    Raises:
        ValueError: fractions outside [0, 1) or summing to 1 or more.
    """
    check_fractions(**{f"fraction {i + 1}": value for i, value in enumerate(fractions)})
    rng = np.random.default_rng(seed)
    labels, sizes = np.unique(np.asarray(targets), return_counts=True)
    counts = _part_counts(sizes, fractions, rng)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for label, class_counts in zip(labels, counts, strict=True):
        members = rng.permutation(np.flatnonzero(targets == label))
        bounds = np.cumsum(class_counts)
        for part, start, stop in zip(parts[1:], bounds - class_counts, bounds, strict=True):
            part.append(members[start:stop])
        parts[0].append(members[bounds[-1] if len(bounds) else 0 :])
    return [np.sort(np.concatenate(part)) if part else np.zeros(0, np.int64) for part in parts]


def _part_counts(sizes: np.ndarray, fractions: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Items of each class (rows) for each part (columns), by largest remainder."""
    counts = np.zeros((len(sizes), len(fractions)), dtype=np.int64)
    for column, fraction in enumerate(fractions):
        exact = sizes * fraction
        base = np.floor(exact).astype(np.int64)
        extra = round(float(exact.sum())) - int(base.sum())
        order = np.lexsort((rng.random(len(sizes)), -(exact - base)))  # largest remainder, random ties
        base[order[:extra]] += 1
        counts[:, column] = base
    for row, size in enumerate(sizes):  # leave at least one item of each class to train on
        while counts[row].sum() > size - 1 and counts[row].max() > 0:
            counts[row, int(np.argmax(counts[row]))] -= 1
    return counts
