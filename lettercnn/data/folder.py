"""Letter image folders (ImageFolder trees with case folding) and their splits.

A tree is either one pool of letter folders, split here stratified with a fixed
seed, or already split into ``train/`` and ``test/`` (``val/`` optional)::

    root/                     root/
        A/  img1.png              train/
        a/  img2.jpg                  A/ ...  a/ ...  upper_b/ ...
        upper_b/ ...                  ...
        ...                       val/      (optional: else carved from train/)
        z/  ...                   test/     (optional: else carved from train/)

Folder names fold to the 26 classes with :func:`lettercnn.labels.fold_label`, so
``a/`` and ``A/`` are both class A. Every image is read once by the torch-free
reader of :mod:`lettercnn.data.imagetree`, through :func:`lettercnn.preprocess.canonical`
(the runtime's preprocessing), and kept in memory as a uint8 glyph; epochs never touch
the files again.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import DatasetFolder

from lettercnn import preprocess
from lettercnn.data.augment import train_transform
from lettercnn.data.glyphs import (
    GlyphSet,
    GlyphTransform,
    Splits,
    check_fractions,
    glyph_item,
    stratified_split,
)
from lettercnn.data.imagetree import (
    IMG_EXTENSIONS,
    SPLIT_FOLDER_NAMES,
    decode_letter_images,
    find_letter_images,
    letter_folders,
    split_alias,
    subfolders,
)
from lettercnn.data.parallel import Progress, offset_progress
from lettercnn.labels import LETTERS

log = logging.getLogger(__name__)


class LetterFolder(DatasetFolder):
    """Letter images in folders named by letter; both cases of a letter are one class.

    Expects::

        root/
            A/ 001.png          class A
            a/ 002.jpg          class A (folded)
            upper_b/ x/003.png  class B (nested folders count for their letter)
            ...

    Args:
        root: the folder of letter folders.
        transform: applied to each canonical uint8 glyph before normalisation
            (augmentation, for training).
        progress: called as ``progress(done, total)`` while decoding.
        workers: processes to decode with; ``None`` decides from the size.

    Attributes:
        classes: ``A``..``Z``, always all 26, in order.
        class_to_idx: ``{letter: index}``.
        folder_to_idx: ``{folder name: index}`` for the folders found.
        samples: ``(path, index)`` of every image read.
        glyphs: uint8 (N, 32, 32), the canonical glyph of each sample.
        skipped: ``(path, reason)`` of every image that could not be read.

    Raises:
        ValueError: unknown folder names, no letter folder, or no readable image.
    """

    samples: list[tuple[str, int]]
    targets: list[int]
    class_to_idx: dict[str, int]

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: GlyphTransform | None = None,
        *,
        progress: Progress | None = None,
        workers: int | None = None,
    ) -> None:
        super().__init__(
            str(Path(root).expanduser()),
            loader=preprocess.canonical,
            extensions=IMG_EXTENSIONS,
            transform=transform,
            allow_empty=True,
        )
        self.folder_to_idx = self.class_to_idx
        self.class_to_idx = {letter: index for index, letter in enumerate(LETTERS)}
        tree = decode_letter_images(self.samples, progress=progress, workers=workers, where=self.root)
        self.samples, self.glyphs, self.skipped = tree.samples, tree.glyphs, tree.skipped
        self.targets = [target for _, target in self.samples]
        if not self.samples:
            found = f"; {len(self.skipped)} image files could not be read" if self.skipped else ""
            raise ValueError(f"Couldn't find any image in {self.root} (extensions {', '.join(IMG_EXTENSIONS)}){found}")
        self._warn_empty_letters()

    def find_classes(self, directory: str | os.PathLike[str]) -> tuple[list[str], dict[str, int]]:
        """The 26 classes, and the class index of each letter folder in ``directory``."""
        return list(LETTERS), letter_folders(directory)

    @staticmethod
    def make_dataset(directory: str | os.PathLike[str], *_args: object, **_kwargs: object) -> list[tuple[str, int]]:
        """Every image file of the tree with its class (the one reader, :func:`find_letter_images`)."""
        return find_letter_images(directory)

    def _warn_empty_letters(self) -> None:
        """Log one warning naming the letters that have no image."""
        counts = np.bincount(np.asarray(self.targets, dtype=np.int64), minlength=len(LETTERS))
        empty = [letter for letter, count in zip(LETTERS, counts, strict=True) if count == 0]
        if empty:
            log.warning("no images for %d letters in %s: %s", len(empty), self.root, ", ".join(empty))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return glyph_item(self.glyphs[index], self.targets[index], self.transform)

    def __len__(self) -> int:
        return len(self.samples)

    def subset(
        self, indices: np.ndarray | list[int] | None = None, transform: GlyphTransform | None = None
    ) -> GlyphSet:
        """The glyphs at ``indices`` (all when ``None``) as an in-memory :class:`GlyphSet`."""
        picked = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        return GlyphSet(self.glyphs[picked], np.asarray(self.targets)[picked], transform, str(self.root))


def _split_layout(root: Path) -> dict[str, Path]:
    """The split folders of ``root`` (``{"train": path, ...}``), or ``{}`` for a flat tree.

    Raises:
        ValueError: split folders mixed with other folders, two folders for one
            split, or split folders without ``train/``.
    """
    names = subfolders(root)
    layout: dict[str, Path] = {}
    for name in names:
        split = split_alias(name)
        if split is not None and split in layout:
            raise ValueError(f"{root} has two folders for the {split} split: {layout[split].name}/ and {name}/")
        if split is not None:
            layout[split] = root / name
    if not layout:
        return {}
    others = [name for name in names if split_alias(name) is None]
    if others:
        raise ValueError(
            f"{root} mixes split folders ({', '.join(p.name for p in layout.values())}) with other folders "
            f"({', '.join(others)}); put the letter folders inside train/ and test/"
        )
    if "train" not in layout:
        raise ValueError(f"{root} has {', '.join(p.name + '/' for p in layout.values())} but no train/ folder")
    return {split: layout[split] for split in SPLIT_FOLDER_NAMES if split in layout}


def _count_images(folder: Path) -> int:
    """Image files in a folder of letter folders (checks the folder names too)."""
    return len(find_letter_images(folder))


def _percent(fraction: float) -> str:
    """0.1 -> '10%'."""
    return f"{fraction * 100:g}%"


def load_splits(
    root: str | os.PathLike[str],
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    augment: bool = True,
    progress: Progress | None = None,
    workers: int | None = None,
) -> Splits:
    """Train, val and test sets from a letter image tree.

    With ``train/`` and ``test/`` folders (``val/`` optional) they are used as they
    are, and a missing ``val/`` (or ``test/``) is carved from ``train/``; otherwise the
    letter folders of ``root`` are split. Carving is stratified per class with
    ``seed``. See the module docstring for the layouts.

    Args:
        root: the tree's root folder.
        val_fraction: share carved for validation (when there is no ``val/``).
        test_fraction: share carved for test (when there is no ``test/``).
        seed: seed of the stratified split.
        augment: give the training set the training augmentation.
        progress: called as ``progress(done, total)`` while decoding all images.
        workers: processes to decode with; ``None`` decides from the size.

    Returns:
        The splits; ``source`` says which layout was found and how it was split.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: bad fractions, unknown folder names, a malformed layout, or no image.
    """
    check_fractions(val_fraction=val_fraction, test_fraction=test_fraction)
    base = Path(root).expanduser()
    if not base.is_dir():
        raise FileNotFoundError(f"data folder {base} does not exist or is not a folder")
    layout = _split_layout(base) or {"all": base}
    totals = {split: _count_images(folder) for split, folder in layout.items()}
    folders: dict[str, LetterFolder] = {}
    offset = 0
    for split, folder in layout.items():
        step = None if progress is None else functools.partial(offset_progress, progress, offset, sum(totals.values()))
        folders[split] = LetterFolder(folder, progress=step, workers=workers)
        offset += totals[split]
    pool = folders.get("train", folders.get("all"))
    assert pool is not None  # a layout always has train/ or is flat
    carve_val = 0.0 if "val" in folders else val_fraction
    carve_test = 0.0 if "test" in folders else test_fraction
    rest, val_part, test_part = stratified_split(np.asarray(pool.targets), (carve_val, carve_test), seed)
    train = pool.subset(rest, train_transform() if augment else None)
    val = folders["val"].subset() if "val" in folders else pool.subset(val_part)
    test = folders["test"].subset() if "test" in folders else pool.subset(test_part)
    return Splits(train, val, test, _splits_source(base, layout, carve_val, carve_test, seed))


def _splits_source(root: Path, layout: dict[str, Path], carve_val: float, carve_test: float, seed: int) -> str:
    """One line saying where the splits came from."""
    if "all" in layout:
        train = 1.0 - carve_val - carve_test
        shares = "/".join(_percent(f) for f in (train, carve_val, carve_test))
        return f"{root}: letter folders split train/val/test {shares}, stratified (seed {seed})"
    found = " + ".join(f"{path.name}/" for path in layout.values())
    carved = [
        f"{name} {_percent(f)} of {layout['train'].name}/"
        for name, f in (("val", carve_val), ("test", carve_test))
        if f
    ]
    suffix = f", {' and '.join(carved)} (stratified, seed {seed})" if carved else ""
    return f"{root}: {found}{suffix}"
