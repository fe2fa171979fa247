"""Reading and writing ImageFolder trees of letters (numpy and OpenCV only, no torch).

Reading: every image goes through :func:`lettercnn.preprocess.canonical`, the one
preprocessing shared with recognition. Writing: a whole tree is written into a
hidden staging folder beside its destination and renamed into place at the end, so
an interrupted import or generation never leaves a half-written tree under the
final name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from lettercnn import preprocess
from lettercnn.labels import fold_label

log = logging.getLogger(__name__)

# One list of image endings for training and recognition.
IMG_EXTENSIONS = preprocess.IMG_EXTENSIONS
# Folder names of a pre-split tree, lower-case; every one is optional but train.
SPLIT_FOLDER_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}


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
    letter_folders: list[Path] = []
    for entry in sorted(out.iterdir()):
        if entry.is_dir() and fold_label(entry.name) is not None:
            letter_folders.append(entry)
        elif entry.is_dir() and split_alias(entry.name) is not None:
            for child in sorted(entry.iterdir()):
                if child.is_dir() and fold_label(child.name) is not None:
                    letter_folders.append(child)
                else:
                    unexpected.append(str(child.relative_to(out)))
        else:
            unexpected.append(entry.name)
    for folder in letter_folders:
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
        raise ValueError(
            f"refusing to overwrite {out}: it holds more than letter folders and images ({shown})"
        )


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
