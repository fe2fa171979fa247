"""What is not a letter: synthetic negatives that teach the model to say "?".

A reader that must answer a letter for everything reads a blank desk as an "I" and a
"7" as a "T". Training shows it what it should refuse, each drawn as a letter would
be (a CANVAS glyph or a whole photo-like scene) and passed through the same
:func:`lettercnn.preprocess.canonical`:

- ``blank``: paper, board or screen with light, shadow, texture, rules or an empty
  box, and no letter;
- ``sign``: digits and signs that do not look like letters (:data:`SIGNS`). The
  digits 0, 1, 2, 5 and 8 are left out on purpose: they *are* drawn like O, I, Z, S
  and B, and the model reads them as those letters;
- ``scribble``: random pen strokes, in one of four ways people scribble
  (:data:`SCRIBBLE_STYLES`): smooth curves, a wandering line, a chain of loops, a
  crossing-out zigzag;
- ``texture``: hatching, dots, a grid patch;
- ``several``: two or three letters close together, read as one glyph;
- ``partial``: a letter cut off by the frame, at most about half of it in view.

The label of a negative is :data:`lettercnn.labels.NOT_A_LETTER`; training pushes the
model's probabilities on them towards uniform (outlier exposure), so a low top
probability means "no letter here". Numpy, OpenCV and matplotlib's FreeType.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from lettercnn.data.augment import change_stroke, elastic_warp, fit_affine, linear_map

# Signs and digits that look like no letter (0 1 2 5 8 do, see the module docstring).
SIGNS = "34679#%&@+=*?!$<>{}"
KINDS: tuple[str, ...] = ("blank", "sign", "scribble", "texture", "several", "partial")
# How often each kind is drawn (same order as KINDS): signs and scribbles are what
# users hold up most, and scribbles vary most; blanks are easy, so fewer suffice.
KIND_WEIGHTS = (0.1, 0.26, 0.3, 0.08, 0.13, 0.13)
# A partial letter keeps at most this share of its width or height in view.
PARTIAL_KEEP = (0.3, 0.55)
# Several letters: gap between them, a share of a letter's size (they must read as one glyph).
SEVERAL_GAP = (-0.05, 0.06)


@functools.cache
def sign_templates(path: str) -> tuple[np.ndarray, ...]:
    """Cropped templates of the :data:`SIGNS` a TrueType font draws (those it lacks are left out)."""
    from matplotlib.ft2font import FT2Font

    from lettercnn.data.render import TEMPLATE_EM_PX, _crop

    font = FT2Font(path)
    font.set_size(TEMPLATE_EM_PX, 72)
    templates = []
    for char in SIGNS:
        if font.get_char_index(ord(char)) == 0:
            continue
        font.clear()
        font.set_text(char, 0.0)
        font.draw_glyphs_to_bitmap(antialiased=True)
        template = _crop(np.asarray(font.get_image(), dtype=np.uint8))
        if template.size and template.max() > 0:
            templates.append(template)
    return tuple(templates)


@functools.lru_cache(maxsize=1)
def hershey_sign_templates() -> tuple[np.ndarray, ...]:
    """The :data:`SIGNS` in OpenCV's Hershey faces (always available)."""
    from lettercnn.data.render import HERSHEY_FACES, HERSHEY_SCALE, HERSHEY_THICKNESS, _crop

    templates = []
    for face in HERSHEY_FACES.values():
        for char in SIGNS:
            (width, height), baseline = cv2.getTextSize(char, face, HERSHEY_SCALE, HERSHEY_THICKNESS)
            pad = 2 * HERSHEY_THICKNESS + height // 2
            canvas = np.zeros((height + baseline + 2 * pad, width + 2 * pad), np.uint8)
            cv2.putText(canvas, char, (pad, height + pad), face, HERSHEY_SCALE, 255, HERSHEY_THICKNESS, cv2.LINE_AA)
            templates.append(_crop(canvas))
    return tuple(templates)


def scribble(rng: np.random.Generator, side: int = 72) -> np.ndarray:
    """Random pen strokes on a ``side`` square, ink bright, cropped: one of :data:`SCRIBBLE_STYLES`."""
    style = SCRIBBLE_STYLES[int(rng.integers(len(SCRIBBLE_STYLES)))]
    canvas = np.zeros((side, side), np.uint8)
    pen = int(rng.integers(2, 9))
    for path in _SCRIBBLE_PATHS[style](rng, side):
        cv2.polylines(canvas, [np.round(path * 16).astype(np.int32).reshape(-1, 1, 2)], False, 255, pen, cv2.LINE_AA, 4)
    return _crop_or_dot(canvas)


def _curves(rng: np.random.Generator, side: int) -> list[np.ndarray]:
    """Two to five smooth curves through a few random points each."""
    return [
        _smooth_path(rng.uniform(0.1, 0.9, (int(rng.integers(3, 7)), 2)) * side, 12)
        for _ in range(int(rng.integers(2, 6)))
    ]


def _wander(rng: np.random.Generator, side: int) -> list[np.ndarray]:
    """One to three long strokes that wander: a heading that keeps turning, a varying step."""
    paths = []
    for _ in range(int(rng.integers(1, 4))):
        heading, turn = rng.uniform(0, 2 * math.pi), rng.uniform(0.4, 1.0)
        headings = heading + rng.normal(0, turn, int(rng.integers(30, 80))).cumsum()
        steps = rng.uniform(0.5, 1.5, headings.size)[:, None] * np.stack([np.cos(headings), np.sin(headings)], axis=1)
        paths.append(np.vstack([np.zeros((1, 2)), steps.cumsum(axis=0)]))
    return _fit(paths, rng, side)


def _fit(paths: list[np.ndarray], rng: np.random.Generator, side: int) -> list[np.ndarray]:
    """The paths moved and scaled together into the middle of the square (no clipping at its edge)."""
    points = np.vstack(paths)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = rng.uniform(0.5, 0.8) * side / max(float((high - low).max()), 1e-6)
    return [(path - (low + high) / 2) * scale + side / 2 for path in paths]


def _coil(rng: np.random.Generator, side: int) -> list[np.ndarray]:
    """A chain of loops, as a pen circling along the page."""
    loops = rng.uniform(2.5, 7)
    t = np.linspace(0, 2 * math.pi * loops, int(40 * loops))
    radius = rng.uniform(0.08, 0.25) * side
    drift = rng.uniform(0.5, 0.9) * side / (2 * math.pi * loops)  # a chain, not one O drawn over
    x = radius * np.cos(t) * rng.uniform(0.5, 1.2) + drift * t
    y = radius * np.sin(t) + rng.normal(0, 0.02 * side, t.size).cumsum() * 0.2
    return _fit([_turned(np.stack([x, y], axis=1), rng)], rng, side)


def _zigzag(rng: np.random.Generator, side: int) -> list[np.ndarray]:
    """Back-and-forth strokes that cross something out."""
    turns = int(rng.integers(6, 15))  # dense: three or four turns would draw an N, M or W
    width = rng.uniform(0.3, 0.8) * side
    along = np.linspace(-0.4, 0.4, turns + 1) * side * rng.uniform(0.6, 1.0)
    across = np.where(np.arange(turns + 1) % 2 == 0, -width / 2, width / 2) + rng.normal(0, 0.04 * side, turns + 1)
    path = _turned(np.stack([across, along], axis=1), rng)
    return _fit([_smooth_path(path, 6) if rng.random() < 0.5 else path], rng, side)


def _turned(path: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The path turned by a random angle about the origin."""
    angle = rng.uniform(0, 2 * math.pi)
    return path @ np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])


# How a scribble is drawn: smooth curves, a wandering stroke, a chain of loops, a
# crossing-out zigzag. People scribble in all of these ways; one style alone teaches the
# model to refuse that style only.
_SCRIBBLE_PATHS: dict[str, Callable[[np.random.Generator, int], list[np.ndarray]]] = {
    "curves": _curves,
    "wander": _wander,
    "coil": _coil,
    "zigzag": _zigzag,
}
SCRIBBLE_STYLES: tuple[str, ...] = tuple(_SCRIBBLE_PATHS)


def _smooth_path(points: np.ndarray, steps: int) -> np.ndarray:
    """A Catmull-Rom curve through the points."""
    padded = np.vstack([points[:1], points, points[-1:]])
    out = []
    for k in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[k - 1], padded[k], padded[k + 1], padded[k + 2]
        for t in np.linspace(0, 1, steps, endpoint=False):
            out.append(
                0.5
                * (
                    2 * p1
                    + (-p0 + p2) * t
                    + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                    + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
                )
            )
    out.append(points[-1])
    return np.array(out)


def texture(rng: np.random.Generator, side: int = 72) -> np.ndarray:
    """Hatching, a cloud of dots or a grid patch, ink bright, cropped."""
    canvas = np.zeros((side, side), np.uint8)
    style = rng.integers(3)
    pen = int(rng.integers(1, 4))
    if style == 0:  # hatching
        angle = rng.uniform(0, math.pi)
        spacing = rng.uniform(4, 10)
        direction = np.array([math.cos(angle), math.sin(angle)])
        normal = np.array([-direction[1], direction[0]])
        for offset in np.arange(-side, side, spacing):
            centre = side / 2 + normal * offset
            a, b = centre - direction * side, centre + direction * side
            cv2.line(canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), 255, pen, cv2.LINE_AA)
        mask = np.zeros_like(canvas)
        cv2.ellipse(
            mask, (side // 2, side // 2), (int(side * 0.35), int(side * 0.3)), rng.uniform(0, 180), 0, 360, 255, -1
        )
        canvas = np.minimum(canvas, mask)
    elif style == 1:  # dots
        for _ in range(int(rng.integers(15, 60))):
            spot = (int(rng.uniform(0.15, 0.85) * side), int(rng.uniform(0.15, 0.85) * side))
            cv2.circle(canvas, spot, int(rng.integers(1, 4)), 255, -1, cv2.LINE_AA)
    else:  # a grid patch
        spacing = rng.uniform(6, 14)
        for position in np.arange(side * 0.2, side * 0.8, spacing):
            cv2.line(canvas, (int(side * 0.2), int(position)), (int(side * 0.8), int(position)), 255, pen)
            cv2.line(canvas, (int(position), int(side * 0.2)), (int(position), int(side * 0.8)), 255, pen)
    return _crop_or_dot(canvas)


def several(templates: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Two or three letters side by side, close enough to read as one glyph, cropped."""
    height = 48
    parts = []
    for template in templates:
        scale = height / template.shape[0]
        width = max(1, round(template.shape[1] * scale))
        parts.append(cv2.resize(template, (width, height), interpolation=cv2.INTER_AREA))
    gap = int(rng.uniform(*SEVERAL_GAP) * height)
    total = sum(p.shape[1] for p in parts) + gap * (len(parts) - 1) + 4
    canvas = np.zeros((height + 4, max(total, 8) + abs(gap) * len(parts)), np.uint8)
    x = 2
    for part in parts:
        region = canvas[2 : 2 + height, x : x + part.shape[1]]
        region[:] = np.maximum(region, part[:, : region.shape[1]])
        x += part.shape[1] + gap
    return _crop_or_dot(canvas)


def partial(template: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A letter with most of one side cut away, as a frame's edge would."""
    height, width = template.shape
    keep = rng.uniform(*PARTIAL_KEEP)
    side = rng.integers(4)
    if side == 0:
        cut = template[:, : max(1, int(width * keep))]
    elif side == 1:
        cut = template[:, width - max(1, int(width * keep)) :]
    elif side == 2:
        cut = template[: max(1, int(height * keep))]
    else:
        cut = template[height - max(1, int(height * keep)) :]
    return _crop_or_dot(np.ascontiguousarray(cut))


def _crop_or_dot(image: np.ndarray) -> np.ndarray:
    """Crop to the ink; an image with none becomes one dot (every template has ink)."""
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    if rows.size == 0:
        dot = np.zeros((3, 3), np.uint8)
        dot[1, 1] = 255
        return dot
    return np.ascontiguousarray(image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


def negative_template(
    kind: str, rng: np.random.Generator, letter: Callable[[], np.ndarray], font_path: Path | None
) -> np.ndarray | None:
    """The ink of one negative of ``kind`` (``None`` for a blank), cropped, ink bright.

    Args:
        kind: one of :data:`KINDS`.
        rng: the sample's generator.
        letter: draws a random letter template of the sample's font (for ``several``
            and ``partial``).
        font_path: the sample's TrueType font, for its signs (``None``: a Hershey face).
    """
    if kind == "blank":
        return None
    if kind == "sign":
        signs = sign_templates(str(font_path)) if font_path is not None else ()
        signs = signs or hershey_sign_templates()
        return signs[int(rng.integers(len(signs)))]
    if kind == "scribble":
        return scribble(rng)
    if kind == "texture":
        return texture(rng)
    if kind == "several":
        return several([letter() for _ in range(int(rng.integers(2, 4)))], rng)
    if kind == "partial":
        return partial(letter(), rng)
    raise ValueError(f"unknown negative kind {kind!r}; expected one of {', '.join(KINDS)}")


def draw_kind(rng: np.random.Generator) -> str:
    """A kind of negative, drawn by :data:`KIND_WEIGHTS`."""
    return KINDS[int(rng.choice(len(KINDS), p=np.asarray(KIND_WEIGHTS) / sum(KIND_WEIGHTS)))]


def hand_distort(template: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light handwriting distortion of a negative's template (no fit: the caller places it)."""
    image = change_stroke(template, int(rng.choice((-1, 1, 2)))) if rng.random() < 0.3 else template
    linear = linear_map(rng.uniform(-15, 15), rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3))
    side = max(image.shape) + 8
    matrix = fit_affine(image, linear, side - 8, side)
    warped = cv2.warpAffine(image, matrix, (side, side), flags=cv2.INTER_LINEAR, borderValue=0)
    if rng.random() < 0.4:
        bent = elastic_warp(warped, rng, rng.uniform(0.5, 1.5))
        warped = bent if bent.any() else warped
    return _crop_or_dot(warped)
