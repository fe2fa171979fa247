"""Letters drawn stroke by stroke, as a pen would: the Hershey vector fonts, jittered.

A TrueType font gives one fixed bitmap per letter; a hand never draws the same letter
twice. The Hershey fonts (the ``Hershey-Fonts`` package of the ``train`` extra, MIT;
the glyphs are Dr. A. V. Hershey's public-domain designs) are polylines, so every
sample can move their control points a little before the pen draws them:

- a smooth random displacement field over the letter (a hand's wobble and bend,
  3-7 % of the letter's size), the same field for all its strokes;
- a pen of its own width (thin ballpoint to marker).

Numpy and OpenCV; the stroke data loads lazily, once per face.
"""

from __future__ import annotations

import functools
import logging
import string
from collections.abc import Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)

CHARS = string.ascii_uppercase + string.ascii_lowercase
# The Hershey faces with Latin letters that people write or read, by category. The
# gothic faces (blackletter) are left out: few read them, none writes them.
STROKE_FACES: dict[str, str] = {
    "futural": "handwriting",
    "futuram": "handwriting",
    "rowmans": "handwriting",
    "rowmand": "sans-serif",
    "rowmant": "serif",
    "timesr": "serif",
    "timesi": "serif",
    "timesrb": "serif",
    "timesib": "serif",
    "cursive": "script",
    "scripts": "script",
    "scriptc": "script",
}
# The letter's longer side when drawn, pixels (about the TrueType templates' size).
DRAW_SIDE = 56.0
# Border around the drawing, pixels: the pen and the wobble reach beyond the points.
DRAW_PAD = 12
# Size of the wobble: the displacement field's amplitude, a share of the letter's size...
WOBBLE = (0.0, 0.07)
# ...made of this many random waves (low spatial frequency: a bend, not a tremor).
WOBBLE_WAVES = 3
# Pen width, a share of the letter's size: a fine pen to a marker.
PEN = (0.035, 0.13)
# Sub-pixel precision of cv2.polylines (fixed point, 2**SHIFT).
SHIFT = 4


class StrokeFontUnavailable(RuntimeError):
    """The Hershey-Fonts package is not installed."""


@functools.cache
def face_strokes(face: str) -> tuple[tuple[np.ndarray, ...], ...]:
    """The strokes of the 52 letters of a Hershey face, in :data:`CHARS` order.

    Returns:
        One tuple of float64 (n, 2) point arrays (x right, y down) per letter.

    Raises:
        StrokeFontUnavailable: the package is missing.
        ValueError: an unknown face or a letter with no strokes.
    """
    try:
        from HersheyFonts import HersheyFonts
    except ImportError:
        raise StrokeFontUnavailable("the Hershey-Fonts package is missing: pip install 'lettercnn[train]'") from None
    if face not in STROKE_FACES:
        raise ValueError(f"unknown stroke face {face!r}; expected one of {', '.join(STROKE_FACES)}")
    font = HersheyFonts()
    font.load_default_font(face)
    letters = []
    for char in CHARS:
        strokes = tuple(np.asarray(stroke, dtype=np.float64) for stroke in font.strokes_for_text(char) if len(stroke))
        if not strokes:
            raise ValueError(f"Hershey face {face} has no strokes for {char!r}")
        letters.append(strokes)
    return tuple(letters)


def draw_letter(strokes: Sequence[np.ndarray], rng: np.random.Generator | None = None) -> np.ndarray:
    """Draw one letter from its strokes, cropped, ink bright (uint8).

    Args:
        strokes: the letter's polylines (see :func:`face_strokes`).
        rng: draws the wobble and the pen; ``None`` draws the plain letter with a
            medium pen (a fixed template).

    Returns:
        The cropped drawing, uint8, ink 255 on 0.
    """
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float(max((high - low).max(), 1.0))
    if rng is None:
        wobble, pen = 0.0, sum(PEN) / 2
        waves = np.zeros((WOBBLE_WAVES, 2, 4))
    else:
        wobble, pen = rng.uniform(*WOBBLE), rng.uniform(*PEN)
        waves = rng.uniform(0.0, 1.0, (WOBBLE_WAVES, 2, 4))
    side = int(DRAW_SIDE + 2 * DRAW_PAD)
    canvas = np.zeros((side, side), np.uint8)
    thickness = max(1, round(pen * DRAW_SIDE))
    for stroke in strokes:
        unit = (stroke - low) / extent  # 0..1 over the letter
        moved = unit + wobble * _field(unit, waves)
        pixels = (moved * DRAW_SIDE + DRAW_PAD) * (1 << SHIFT)
        polyline = np.round(pixels).astype(np.int32).reshape(-1, 1, 2)
        if len(stroke) == 1:
            centre = tuple(int(v) for v in polyline[0, 0])
            cv2.circle(canvas, centre, (thickness // 2) << SHIFT, 255, -1, cv2.LINE_AA, SHIFT)
        else:
            cv2.polylines(canvas, [polyline], False, 255, thickness, cv2.LINE_AA, SHIFT)
    return _crop(canvas)


def _field(unit: np.ndarray, waves: np.ndarray) -> np.ndarray:
    """A smooth displacement (n, 2) at points in 0..1: a sum of a few random low waves."""
    out = np.zeros_like(unit)
    for wave in waves:
        for axis in range(2):
            frequency_x, frequency_y, phase, weight = wave[axis]
            angle = 2 * np.pi * (frequency_x * unit[:, 0] + frequency_y * unit[:, 1] + phase)
            out[:, axis] += (2 * weight - 1) * np.sin(angle)
    return out / len(waves)


def _crop(image: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return np.ascontiguousarray(image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
