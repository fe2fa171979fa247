"""Import EMNIST Letters from its official gzip IDX files into an image tree (no torch).

Download the "binary" (gzip) EMNIST release yourself (https://www.nist.gov/itl/products-and-services/emnist-dataset)
and point :func:`import_emnist` at the folder holding its letters files::

    SRC/
        emnist-letters-train-images-idx3-ubyte.gz
        emnist-letters-train-labels-idx1-ubyte.gz
        emnist-letters-test-images-idx3-ubyte.gz
        emnist-letters-test-labels-idx1-ubyte.gz

It writes, ready for :func:`lettercnn.data.load_splits` (its own train/test split kept)::

    OUT/
        train/A/000000.png ... train/Z/...
        test/A/...         ... test/Z/...

EMNIST stores every image transposed (column-major, as in the original MATLAB
release) and numbers the letters 1..26; both are undone here, so the PNGs are upright
letters in folders named by letter.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from pathlib import Path

import numpy as np

from lettercnn.data.imagetree import staged_tree
from lettercnn.data.parallel import Progress
from lettercnn.labels import LETTERS, NUM_CLASSES
from lettercnn.preprocess import encode_png

log = logging.getLogger(__name__)

# IDX magic numbers: 0x00000803 (unsigned bytes, 3 dimensions) for images,
# 0x00000801 (unsigned bytes, 1 dimension) for labels.
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
IDX_HEADER_INT_BYTES = 4
EMNIST_SPLITS: tuple[str, ...] = ("train", "test")
EMNIST_FILE = "emnist-letters-{split}-{kind}-ubyte.gz"
EMNIST_KINDS = {"images": "images-idx3", "labels": "labels-idx1"}
# EMNIST Letters numbers A..Z as 1..26; its images are 28x28.
EMNIST_FIRST_LABEL = 1
EMNIST_SIDE = 28
# Report progress every this many images written.
PROGRESS_EVERY = 1000


def _read_bytes(path: Path) -> bytes:
    """The content of a file, gunzipped when its name ends with .gz."""
    if path.suffix != ".gz":
        return path.read_bytes()
    with gzip.open(path, "rb") as stream:
        return stream.read()


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file of unsigned bytes (the MNIST/EMNIST format), gzipped or not.

    Args:
        path: e.g. ``emnist-letters-train-images-idx3-ubyte.gz``.

    Returns:
        uint8 array of the stored shape: (count, rows, cols) for images, (count,) for labels.

    Raises:
        ValueError: not an IDX file of unsigned bytes (the magic number is named), or
            a body shorter or longer than its header says.
        OSError: the file cannot be read.
    """
    file = Path(path)
    try:
        data = _read_bytes(file)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise ValueError(f"{file.name} is not a readable gzip file: {err}") from None
    if len(data) < IDX_HEADER_INT_BYTES:
        raise ValueError(f"{file.name} is too short to be an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:IDX_HEADER_INT_BYTES], "big")
    kind, ndim = magic >> 8, magic & 0xFF
    if kind != 0x08 or not 1 <= ndim <= 4:
        raise ValueError(
            f"{file.name} has magic number {magic}; expected an IDX file of unsigned bytes "
            f"({LABELS_MAGIC} for labels, {IMAGES_MAGIC} for images)"
        )
    header_end = IDX_HEADER_INT_BYTES * (1 + ndim)
    header = data[IDX_HEADER_INT_BYTES:header_end]
    shape = tuple(int.from_bytes(header[i : i + 4], "big") for i in range(0, len(header), 4))
    body = np.frombuffer(data, dtype=np.uint8, offset=min(header_end, len(data)))
    if len(header) != 4 * ndim or body.size != int(np.prod(shape)):
        raise ValueError(
            f"{file.name} header says shape {shape} ({int(np.prod(shape))} bytes) but holds {body.size} bytes"
        )
    return body.reshape(shape)


def emnist_files(src: str | os.PathLike[str]) -> dict[str, dict[str, Path]]:
    """The four EMNIST Letters files in ``src``: ``files[split][kind]``.

    Raises:
        FileNotFoundError: ``src`` is not a folder or lacks files (all expected names listed).
    """
    folder = Path(src).expanduser()
    files = {
        split: {kind: folder / EMNIST_FILE.format(split=split, kind=name) for kind, name in EMNIST_KINDS.items()}
        for split in EMNIST_SPLITS
    }
    expected = [path for kinds in files.values() for path in kinds.values()]
    missing = [path.name for path in expected if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"EMNIST Letters files missing in {folder}: {', '.join(missing)}; "
            f"expected {', '.join(path.name for path in expected)} (the gzip 'binary' release)"
        )
    return files


def _read_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one split; return upright images and 0-based class indices.

    Raises:
        ValueError: wrong magic number, dimensions, counts or label range (file named).
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(f"{images_path.name} has magic number {0x800 | images.ndim}; expected {IMAGES_MAGIC} (images)")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path.name} has magic number {0x800 | labels.ndim}; expected {LABELS_MAGIC} (labels)")
    if images.shape[1:] != (EMNIST_SIDE, EMNIST_SIDE):
        raise ValueError(
            f"{images_path.name} holds {images.shape[1]}x{images.shape[2]} images; "
            f"EMNIST's are {EMNIST_SIDE}x{EMNIST_SIDE}"
        )
    if len(images) != len(labels):
        raise ValueError(f"{images_path.name} has {len(images)} images but {labels_path.name} has {len(labels)} labels")
    last = EMNIST_FIRST_LABEL + NUM_CLASSES - 1
    bad = labels[(labels < EMNIST_FIRST_LABEL) | (labels > last)]
    if bad.size:
        raise ValueError(
            f"{labels_path.name} holds label {int(bad[0])}; EMNIST Letters labels are {EMNIST_FIRST_LABEL}..{last}"
        )
    upright = images.transpose(0, 2, 1)  # EMNIST stores each image transposed
    return upright, labels.astype(np.int64) - EMNIST_FIRST_LABEL


def import_emnist(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, dict[str, int]]:
    """Convert EMNIST Letters IDX files into an image tree ``OUT/{train,test}/{A..Z}/*.png``.

    Args:
        src: folder with the four ``emnist-letters-*-ubyte.gz`` files.
        out: the folder to create; written beside and renamed into place when complete.
        overwrite: replace an existing non-empty ``out`` (only an image tree).
        progress: called as ``progress(done, total)`` over all images.

    Returns:
        Images written per split and letter, ``{"train": {"A": n, ...}, "test": {...}}``.

    Raises:
        FileNotFoundError: a file is missing (all expected names are listed).
        ValueError: a file is not what it should be (named), or ``out`` is not empty.
    """
    files = emnist_files(src)
    splits = {split: _read_split(kinds["images"], kinds["labels"]) for split, kinds in files.items()}
    total = sum(len(labels) for _, labels in splits.values())
    counts: dict[str, dict[str, int]] = {}
    with staged_tree(out, overwrite=overwrite) as staging:
        done = 0
        for split, (images, labels) in splits.items():
            counts[split] = _write_split(staging / split, images, labels, progress, done, total)
            done += len(labels)
    log.info("imported %d EMNIST letters into %s", total, out)
    return counts


def _write_split(
    folder: Path, images: np.ndarray, labels: np.ndarray, progress: Progress | None, done: int, total: int
) -> dict[str, int]:
    """Write one split's images as ``folder/{A..Z}/NNNNNN.png``; return counts per letter."""
    counts = dict.fromkeys(LETTERS, 0)
    for letter in LETTERS:
        (folder / letter).mkdir(parents=True)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        letter = LETTERS[label]
        (folder / letter / f"{index:06d}.png").write_bytes(encode_png(np.ascontiguousarray(image)))
        counts[letter] += 1
        if progress is not None and ((done + index + 1) % PROGRESS_EVERY == 0 or done + index + 1 == total):
            progress(done + index + 1, total)
    return counts
