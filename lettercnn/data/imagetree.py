"""Reading and writing ImageFolder trees of letters (numpy and OpenCV only, no torch).

Reading (:func:`read_letter_tree`, the one reader of labelled image trees: training's
:class:`~lettercnn.data.folder.LetterFolder` and ``letters bench`` both use it): an image
belongs to the letter of the top folder it is in, however deep, and goes through
:func:`lettercnn.preprocess.canonical`, the one preprocessing shared with recognition::

    root/
        A/ 001.png          class A
        a/ 002.jpg          class A (case folds)
        upper_b/ x/003.png  class B (nested folders count for their letter)

Writing: a whole tree is written into a hidden staging folder beside its destination
and renamed into place at the end, so an interrupted import or generation never
leaves a half-written tree under the final name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lettercnn import preprocess
from lettercnn.data.parallel import Progress, map_chunks
from lettercnn.labels import FOLDER_NAME_FORMS, fold_label, letter_index

log = logging.getLogger(__name__)

# One list of image endings for training and recognition.
IMG_EXTENSIONS = preprocess.IMG_EXTENSIONS
# Folder names of a pre-split tree, lower-case; every one is optional but train.
SPLIT_FOLDER_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}
# Unreadable images named one by one in the log before a single summary line.
MAX_LOGGED_FAILURES = 10


@dataclass(frozen=True)
class LabelledGlyphs:
    """Labelled canonical glyphs and a line saying where they came from.

    What a model is scored on: training's validation and test splits, ``letters eval``,
    the report, quantisation, ``letters bench``.

    Attributes:
        glyphs: uint8 ``(n, size, size)``, white on black, as :func:`preprocess.canonical` makes them.
        targets: int64 ``(n,)`` class indices, 0..25 for A..Z.
        source: e.g. ``"the run's synthetic test split (40 per letter, seed 0)"``.
    """

    glyphs: np.ndarray
    targets: np.ndarray
    source: str

    def inputs(self, spec: preprocess.InputSpec = preprocess.DEFAULT_SPEC) -> np.ndarray:
        """The glyphs as model inputs, float32 ``(n, 1, size, size)``."""
        return preprocess.normalize(self.glyphs, spec)


@dataclass(frozen=True)
class LetterTree:
    """Every image of a folder of letter folders, decoded.

    Attributes:
        samples: ``(path, class index)`` of every readable image, in reading order.
        glyphs: uint8 ``(n, size, size)``, the canonical glyph of each sample.
        skipped: ``(path, reason)`` of every image that could not be read.
    """

    samples: list[tuple[str, int]]
    glyphs: np.ndarray
    skipped: list[tuple[str, str]]

    @property
    def targets(self) -> np.ndarray:
        """int64 ``(n,)`` class index of each sample."""
        return np.asarray([target for _, target in self.samples], dtype=np.int64)

    def labelled(self, source: str) -> LabelledGlyphs:
        """The glyphs and their classes, with ``source`` saying where they came from."""
        return LabelledGlyphs(self.glyphs, self.targets, source)


def subfolders(directory: str | os.PathLike[str]) -> list[str]:
    """Names of the visible subfolders of ``directory``, sorted."""
    return sorted(entry.name for entry in os.scandir(directory) if entry.is_dir() and not entry.name.startswith("."))


def letter_folders(directory: str | os.PathLike[str]) -> dict[str, int]:
    """Map each letter folder of ``directory`` to its class index.

    Args:
        directory: a folder of letter folders. Hidden folders (``.name``) are ignored.

    Returns:
        ``{folder name: class index}``, e.g. ``{"A": 0, "a": 0, "upper_b": 1}``.

    Raises:
        ValueError: a folder name spells no letter (all such names listed, with
            the accepted forms), or there is no letter folder at all.
    """
    names = subfolders(directory)
    unknown = [name for name in names if fold_label(name) is None]
    if unknown:
        hint = ""
        if any(split_alias(name) for name in unknown):
            hint = "; a tree split into train/ and test/ is read with load_splits"
        raise ValueError(
            f"unknown class folders in {directory}: {', '.join(map(repr, unknown))}; "
            f"a class folder must name one letter: {FOLDER_NAME_FORMS}{hint}"
        )
    if not names:
        raise ValueError(
            f"Couldn't find any letter folder in {directory}; expected folders named "
            f"{FOLDER_NAME_FORMS}, or train/ and test/ folders holding them"
        )
    return {name: letter_index(name) for name in names}


def find_letter_images(directory: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """Every image file under the letter folders of ``directory``, labelled by its top folder.

    The order is torchvision's ``DatasetFolder.make_dataset``: folders by name, then
    each folder walked (links followed) with names sorted, so seeded splits of a tree
    are the same as they always were.

    Returns:
        ``(path, class index)`` per image file.

    Raises:
        ValueError: see :func:`letter_folders`.
    """
    root = os.path.expanduser(directory)
    samples = []
    for name, target in sorted(letter_folders(root).items()):
        for folder, _, files in sorted(os.walk(os.path.join(root, name), followlinks=True)):
            samples += [(os.path.join(folder, file), target) for file in sorted(files) if is_image_file(file)]
    return samples


def decode_letter_images(
    samples: Sequence[tuple[str, int]],
    *,
    progress: Progress | None = None,
    workers: int | None = None,
    where: str | os.PathLike[str] = "",
) -> LetterTree:
    """Decode labelled image files to canonical glyphs, dropping (and logging) the unreadable ones.

    Args:
        samples: ``(path, class index)`` per file.
        progress: called as ``progress(done, total)`` while decoding.
        workers: processes to decode with; ``None`` decides from the size.
        where: the folder the files came from, for the log.

    Returns:
        The readable samples and their glyphs, and the skipped files with the reason.
    """
    paths = [path for path, _ in samples]
    chunks = list(map_chunks(decode_glyphs, paths, workers=workers, progress=progress))
    size = preprocess.DEFAULT_SPEC.size
    glyphs = np.concatenate([g for g, _ in chunks]) if chunks else np.zeros((0, size, size), np.uint8)
    failed: dict[int, str] = {}
    offset = 0
    for chunk_glyphs, failures in chunks:
        failed.update((offset + position, message) for position, message in failures)
        offset += len(chunk_glyphs)
    for message in list(failed.values())[:MAX_LOGGED_FAILURES]:
        log.warning("skipped an unreadable image: %s", message)
    if failed:
        log.warning("skipped %d unreadable images of %d in %s", len(failed), len(paths), where)
    keep = np.array([index not in failed for index in range(len(paths))], dtype=bool)
    kept = [sample for sample, ok in zip(samples, keep, strict=True) if ok]
    return LetterTree(kept, glyphs[keep], [(paths[index], message) for index, message in failed.items()])


def read_letter_tree(
    root: str | os.PathLike[str], *, progress: Progress | None = None, workers: int | None = None
) -> LetterTree:
    """Every readable image of a folder of letter folders, labelled and decoded.

    Args:
        root: the folder of letter folders (see the module docstring).
        progress: called as ``progress(done, total)`` while decoding.
        workers: processes to decode with; ``None`` decides from the size.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: unknown folder names, or no letter folder.
    """
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder not found: {folder}")
    return decode_letter_images(find_letter_images(folder), progress=progress, workers=workers, where=folder)


def is_image_file(name: str) -> bool:
    """Whether a file name ends with one of :data:`IMG_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMG_EXTENSIONS)


def decode_glyphs(paths: Sequence[str]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode image files to canonical glyphs.

    Args:
        paths: image files.

    Returns:
        ``(glyphs, failures)``: uint8 array (len(paths), size, size), zero where a
        file failed; and ``(position, message)`` for each file that could not be read.
    """
    size = preprocess.DEFAULT_SPEC.size
    glyphs = np.zeros((len(paths), size, size), dtype=np.uint8)
    failures: list[tuple[int, str]] = []
    for position, path in enumerate(paths):
        try:
            glyphs[position] = preprocess.canonical(path)
        except preprocess.ImageError as err:
            failures.append((position, str(err)))
    return glyphs, failures


def split_alias(name: str) -> str | None:
    """The split a folder name stands for (``"Validation"`` -> ``"val"``), or ``None``."""
    key = name.lower()
    return next((split for split, names in SPLIT_FOLDER_NAMES.items() if key in names), None)


def _unexpected_entries(out: Path) -> list[str]:
    """Entries under ``out`` that are not letter/split folders or images inside them."""
    unexpected: list[str] = []
    folders: list[Path] = []
    for entry in sorted(out.iterdir()):
        if entry.is_dir() and fold_label(entry.name) is not None:
            folders.append(entry)
        elif entry.is_dir() and split_alias(entry.name) is not None:
            for child in sorted(entry.iterdir()):
                if child.is_dir() and fold_label(child.name) is not None:
                    folders.append(child)
                else:
                    unexpected.append(str(child.relative_to(out)))
        else:
            unexpected.append(entry.name)
    for folder in folders:
        for root, _, files in os.walk(folder):
            unexpected.extend(str(Path(root, f).relative_to(out)) for f in files if not is_image_file(f))
    return unexpected


def _check_destination(out: Path, overwrite: bool) -> None:
    """Refuse to replace a non-empty ``out`` unless asked, and never a non-tree."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise ValueError(f"{out} exists and is not empty; choose another folder, or overwrite it (--overwrite)")
    unexpected = _unexpected_entries(out)
    if unexpected:
        shown = ", ".join(unexpected[:5]) + (" ..." if len(unexpected) > 5 else "")
        raise ValueError(f"refusing to overwrite {out}: it holds more than letter folders and images ({shown})")


@contextlib.contextmanager
def staged_tree(out: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``out`` in one rename.

    Args:
        out: the final folder of the tree.
        overwrite: replace an existing non-empty ``out`` (only if it holds nothing
            but letter/split folders and images, so a wrong path cannot wipe a home
            folder).

    Yields:
        A hidden folder beside ``out``. On an exception it is deleted and ``out`` is
        left as it was.

    Raises:
        ValueError: ``out`` is a file, or a non-empty folder without ``overwrite``,
            or holds other things than an image tree.
    """
    final = Path(out).expanduser()
    _check_destination(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        yield staging
        if final.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.replace(final, retired / final.name)
            os.replace(staging, final)
            shutil.rmtree(retired)
        else:
            os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
