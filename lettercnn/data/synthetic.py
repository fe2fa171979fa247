"""Synthetic letters that need no download: fonts we already ship, drawn like handwriting and photos.

See :mod:`lettercnn.data.render` for the fonts and the rendering. This module turns
renders into datasets (:class:`SyntheticLetters`, :func:`synthetic_splits`) and into
an image tree on disk (:func:`write_synthetic`)::

    OUT/
        A/000000-A-DejaVuSans.png     64x64 gray, before preprocessing:
        A/000026-a-hershey-plain.png  what a camera would see
        ...
        Z/...

Samples are numbered; sample ``i`` is letter ``LETTERS[i % 26]`` in a random case and
font, drawn from ``np.random.default_rng((seed, stream, i))`` where the stream tells
train, val and test apart. The same arguments give the same pixels whatever the
number of worker processes.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lettercnn.data.augment import train_transform
from lettercnn.data.glyphs import GlyphSet, GlyphTransform, Splits, check_fractions
from lettercnn.data.imagetree import staged_tree
from lettercnn.data.parallel import Progress, map_chunks, offset_progress
from lettercnn.data.render import Rendered, load_font_bank, render_chunk
from lettercnn.labels import LETTERS, NUM_CLASSES
from lettercnn.preprocess import encode_png

log = logging.getLogger(__name__)

# Independent sample streams: a val or test sample is never a train sample.
STREAMS: dict[str, int] = {"train": 0, "val": 1, "test": 2, "negatives": 3, "val-negatives": 4}
LETTER_SPLITS: tuple[str, ...] = ("train", "val", "test")
# Characters kept in file names (font names of user fonts may hold anything).
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# Shares of per_letter that synthetic_splits (and so every synthetic training run) gives
# validation and test.
VAL_FRACTION = 0.1
TEST_FRACTION = 0.1


def _check_args(per_letter: int, seed: int, split: str) -> None:
    """Validate the common arguments.

    Raises:
        ValueError: naming the bad value and what is accepted.
    """
    if isinstance(per_letter, bool) or not isinstance(per_letter, (int, np.integer)) or per_letter < 1:
        raise ValueError(f"per_letter must be a positive integer, got {per_letter!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if split not in LETTER_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(LETTER_SPLITS)}")


def _fonts_key(fonts_dir: str | os.PathLike[str] | None) -> str | None:
    """A canonical, picklable form of ``fonts_dir`` (also the font-bank cache key)."""
    return None if fonts_dir is None else str(Path(fonts_dir).expanduser().resolve())


def _render(
    count: int,
    *,
    seed: int,
    split: str,
    fonts_dir: str | None,
    distort: bool,
    keep_raw: bool,
    progress: Progress | None,
    workers: int | None,
    negatives: bool = False,
) -> Iterator[Rendered]:
    """Render samples 0..count-1 of a stream, chunk by chunk."""
    load_font_bank(fonts_dir)  # fail here, with the font errors, before any worker starts
    job = functools.partial(
        render_chunk,
        seed=(seed, STREAMS[split]),
        fonts_dir=fonts_dir,
        distort=distort,
        keep_raw=keep_raw,
        negatives=negatives,
    )
    return map_chunks(job, range(count), workers=workers, progress=progress)


def synthetic_negatives(
    count: int,
    *,
    seed: int = 0,
    split: str = "negatives",
    fonts_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> GlyphSet:
    """Images of no letter (blank pages, signs, scribbles, ...; :mod:`lettercnn.data.negatives`).

    Their targets are :data:`~lettercnn.labels.NOT_A_LETTER`; training adds them to
    its training split (outlier exposure, :mod:`lettercnn.nn.losses`).

    Args:
        count: how many.
        seed: non-negative seed.
        split: the sample stream, ``"negatives"`` (training) or ``"val-negatives"``
            (calibration: the threshold that refuses them).
        fonts_dir: extra fonts, as for the letters.
        progress: called as ``progress(done, total)``.
        workers: processes to render with.

    Returns:
        A set of ``count`` canonical glyphs, not augmented.
    """
    if split not in ("negatives", "val-negatives"):
        raise ValueError(f"unknown negatives split {split!r}; expected negatives or val-negatives")
    if count <= 0:
        return GlyphSet.empty(f"synthetic {split} seed {seed}")
    chunks = list(
        _render(
            count,
            seed=int(seed),
            split=split,
            fonts_dir=_fonts_key(fonts_dir),
            distort=True,
            keep_raw=False,
            progress=progress,
            workers=workers,
            negatives=True,
        )
    )
    return GlyphSet(
        np.concatenate([c.glyphs for c in chunks]),
        np.concatenate([c.labels for c in chunks]),
        None,
        f"synthetic {split} seed {seed}",
    )


class SyntheticLetters(GlyphSet):
    """Letters rendered from fonts, held in memory as canonical glyphs.

    ``per_letter`` samples of each of the 26 classes, upper and lower case mixed about
    evenly, each font equally likely. Generated once, at construction.

    Args:
        per_letter: samples per class.
        seed: non-negative; the same seed gives the same glyphs.
        split: the sample stream, ``"train"``, ``"val"`` or ``"test"``: streams of one
            seed share no sample.
        fonts_dir: a folder of extra .ttf/.otf/.ttc fonts, added to the bundled ones.
        augment: draw like handwriting and photos (stroke, slant, bend; paper, ink,
            polarity, light, blur, noise, JPEG); ``False`` draws clean upright letters.
        transform: applied to each canonical glyph when an item is read (the training
            augmentation of :mod:`lettercnn.data.augment`), not stored.
        progress: called as ``progress(done, total)`` while rendering.
        workers: processes to render with; ``None`` decides from the size.

    Attributes:
        chars: the character drawn per sample (``"a"`` or ``"A"`` ...).
        fonts: index into ``font_names`` per sample.
        font_names: every font the set drew from.

    Raises:
        ValueError: a bad argument, or a ``fonts_dir`` with no usable font.
    """

    def __init__(
        self,
        per_letter: int,
        *,
        seed: int = 0,
        split: str = "train",
        fonts_dir: str | os.PathLike[str] | None = None,
        augment: bool = True,
        transform: GlyphTransform | None = None,
        progress: Progress | None = None,
        workers: int | None = None,
    ) -> None:
        _check_args(per_letter, seed, split)
        key = _fonts_key(fonts_dir)
        chunks = list(
            _render(
                per_letter * NUM_CLASSES,
                seed=int(seed),
                split=split,
                fonts_dir=key,
                distort=augment,
                keep_raw=False,
                progress=progress,
                workers=workers,
            )
        )
        glyphs = np.concatenate([chunk.glyphs for chunk in chunks])
        super().__init__(
            glyphs, np.concatenate([c.labels for c in chunks]), transform, f"synthetic {split} seed {seed}"
        )
        self.chars = np.concatenate([chunk.chars for chunk in chunks])
        self.fonts = np.concatenate([chunk.fonts for chunk in chunks])
        self.font_names = load_font_bank(key).names
        log.info("rendered %d synthetic letters from %d fonts (%s)", len(self), len(self.font_names), self.name)


def _split_sizes(per_letter: int, val_fraction: float, test_fraction: float) -> dict[str, int]:
    """Per-letter sample counts of train, val and test.

    Raises:
        ValueError: bad fractions, or too few samples to leave one per letter for training.
    """
    check_fractions(val_fraction=val_fraction, test_fraction=test_fraction)
    val, test = round(per_letter * val_fraction), round(per_letter * test_fraction)
    if per_letter - val - test < 1:
        raise ValueError(
            f"per_letter {per_letter} leaves nothing to train on after val {val} and test {test} per letter"
        )
    return {"train": per_letter - val - test, "val": val, "test": test}


def synthetic_splits(
    per_letter: int,
    *,
    seed: int = 0,
    fonts_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
    augment: bool = True,
    progress: Progress | None = None,
    workers: int | None = None,
) -> Splits:
    """Train, val and test sets of synthetic letters, from independent sample streams.

    All three are drawn like handwriting and photos (the field is like that); the
    fonts are shared, the samples never are.

    Args:
        per_letter: samples per class over the three splits.
        seed: non-negative seed of all three.
        fonts_dir: extra fonts, see :class:`SyntheticLetters`.
        val_fraction: share of ``per_letter`` for validation.
        test_fraction: share of ``per_letter`` for test.
        augment: give the training set the training augmentation (on reading).
        progress: called as ``progress(done, total)`` over all three sets.
        workers: processes to render with.

    Returns:
        The splits; ``source`` says how they were made.

    Raises:
        ValueError: bad arguments or a ``fonts_dir`` with no usable font.
    """
    _check_args(per_letter, seed, "train")
    sizes = _split_sizes(per_letter, val_fraction, test_fraction)
    total = per_letter * NUM_CLASSES
    sets: dict[str, GlyphSet] = {}
    offset = 0
    for split, count in sizes.items():
        step = None if progress is None else functools.partial(offset_progress, progress, offset, total)
        transform = train_transform() if (split == "train" and augment) else None
        if count == 0:
            sets[split] = GlyphSet.empty(f"synthetic {split} seed {seed}")
            continue
        sets[split] = SyntheticLetters(
            count,
            seed=seed,
            split=split,
            fonts_dir=fonts_dir,
            transform=transform,
            progress=step,
            workers=workers,
        )
        offset += count * NUM_CLASSES
    shares = "/".join(str(sizes[split]) for split in LETTER_SPLITS)
    source = f"synthetic letters, {per_letter} per letter (train/val/test {shares}), seed {seed}"
    if fonts_dir is not None:
        source += f", extra fonts from {fonts_dir}"
    return Splits(sets["train"], sets["val"], sets["test"], source)


def synthetic_split(
    split: str,
    per_letter: int,
    *,
    seed: int = 0,
    fonts_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> GlyphSet:
    """One split of ``synthetic_splits(per_letter, seed=seed)``, rendered alone and not augmented.

    What export, quantisation and reports need to score a synthetic run on its own
    validation or test images without rendering the training set.

    Args:
        split: "train", "val" or "test".
        per_letter: the run's samples per letter over the three splits.
        seed: the run's seed.
        fonts_dir: the run's extra fonts.
        progress: called as ``progress(done, total)``.

    Returns:
        The same glyphs as that split of :func:`synthetic_splits` (empty if it got none).

    Raises:
        ValueError: bad arguments, as :func:`synthetic_splits`.
    """
    _check_args(per_letter, seed, split)
    count = _split_sizes(per_letter, VAL_FRACTION, TEST_FRACTION)[split]
    if count == 0:
        return GlyphSet.empty(f"synthetic {split} seed {seed}")
    return SyntheticLetters(count, seed=seed, split=split, fonts_dir=fonts_dir, progress=progress)


def write_synthetic(
    out: str | os.PathLike[str],
    per_letter: int,
    *,
    seed: int = 0,
    fonts_dir: str | os.PathLike[str] | None = None,
    augment: bool = True,
    overwrite: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
) -> dict[str, int]:
    """Write synthetic letters as an image tree ``OUT/A/*.png ... OUT/Z/*.png``.

    The images are the renders *before* preprocessing (CANVAS x CANVAS gray, either
    polarity), as a camera would see them; :func:`lettercnn.data.load_splits` on the
    tree gives exactly the glyphs of ``SyntheticLetters(per_letter, seed=seed)``.
    The tree is written beside ``OUT`` and renamed into place when complete.

    Args:
        out: the folder to create.
        per_letter: images per letter.
        seed: non-negative seed (the ``"train"`` stream of :class:`SyntheticLetters`).
        fonts_dir: extra fonts, see :class:`SyntheticLetters`.
        augment: draw like handwriting and photos; ``False``: clean letters.
        overwrite: replace an existing non-empty ``out`` (only an image tree).
        progress: called as ``progress(done, total)``.
        workers: processes to render with.

    Returns:
        Images written per letter, ``{"A": n, ..., "Z": n}``.

    Raises:
        ValueError: bad arguments, an unusable ``fonts_dir``, or ``out`` not empty.
    """
    _check_args(per_letter, seed, "train")
    key = _fonts_key(fonts_dir)
    names = load_font_bank(key).names
    counts = dict.fromkeys(LETTERS, 0)
    with staged_tree(out, overwrite=overwrite) as staging:
        for letter in LETTERS:
            (staging / letter).mkdir()
        chunks = _render(
            per_letter * NUM_CLASSES,
            seed=int(seed),
            split="train",
            fonts_dir=key,
            distort=augment,
            keep_raw=True,
            progress=progress,
            workers=workers,
        )
        index = 0
        for chunk in chunks:
            assert chunk.raw is not None  # keep_raw=True
            for raw, label, char, font in zip(chunk.raw, chunk.labels, chunk.chars, chunk.fonts, strict=True):
                letter = LETTERS[label]
                font_name = _UNSAFE_NAME.sub("_", names[font])
                (staging / letter / f"{index:06d}-{char}-{font_name}.png").write_bytes(encode_png(raw))
                counts[letter] += 1
                index += 1
    log.info("wrote %d synthetic letters to %s", index, out)
    return counts
