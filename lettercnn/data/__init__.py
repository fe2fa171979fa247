"""Letter datasets for training: image folders, synthetic letters, EMNIST import.

This is the training side (it imports torch), but lazily: ``import lettercnn.data``
loads nothing until a name is used, so the torch-free modules
(:mod:`~lettercnn.data.emnist`, :mod:`~lettercnn.data.render`,
:mod:`~lettercnn.data.imagetree`, :mod:`~lettercnn.data.fontfiles`, :mod:`~lettercnn.data.scenes`,
:mod:`~lettercnn.data.negatives`, :mod:`~lettercnn.data.strokes`) stay usable in a fresh worker process or a
runtime-only install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lettercnn.lazy import lazy_exports

# Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "load_splits": "folder",
    "LetterFolder": "folder",
    "IMG_EXTENSIONS": "imagetree",
    "Splits": "glyphs",
    "GlyphSet": "glyphs",
    "synthetic_splits": "synthetic",
    "synthetic_split": "synthetic",
    "SyntheticLetters": "synthetic",
    "write_synthetic": "synthetic",
    "synthetic_negatives": "synthetic",
    "import_emnist": "emnist",
    "read_idx": "emnist",
    "AugmentConfig": "augment",
    "train_transform": "augment",
}

__all__ = [
    "IMG_EXTENSIONS",
    "AugmentConfig",
    "GlyphSet",
    "LetterFolder",
    "Splits",
    "SyntheticLetters",
    "import_emnist",
    "load_splits",
    "read_idx",
    "synthetic_negatives",
    "synthetic_split",
    "synthetic_splits",
    "train_transform",
    "write_synthetic",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from lettercnn.data.augment import AugmentConfig, train_transform
    from lettercnn.data.emnist import import_emnist, read_idx
    from lettercnn.data.folder import LetterFolder, load_splits
    from lettercnn.data.glyphs import GlyphSet, Splits
    from lettercnn.data.imagetree import IMG_EXTENSIONS
    from lettercnn.data.synthetic import (
        SyntheticLetters,
        synthetic_negatives,
        synthetic_split,
        synthetic_splits,
        write_synthetic,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
