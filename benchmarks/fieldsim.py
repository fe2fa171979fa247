"""The field benchmark's own camera simulation (numpy and OpenCV).

Written apart from the training scenes (:mod:`lettercnn.data.scenes`) on purpose: a
benchmark that drew its frames with the training code would only measure how well
the model learnt that code. The shapes come from held-out fonts; the camera here has
its own light model (a lamp's fall-off and cast shadows with a penumbra), its own
perspective, lens and sensor, and its own ranges:

- frames are 128x128, one letter 30-70 % of the frame, uncropped, near the centre;
- light falls off by 25-70 % across the frame, plus soft cast shadows;
- perspective up to 10 % of the side, defocus, sensor noise, JPEG 35-85;
- ``noise``: a small or hot sensor, noise of 4-8 % of the range and, in half the
  frames, 0.05-0.3 % of the pixels stuck dark and as many stuck bright.

Each condition stresses one thing (see :data:`CONDITIONS`); ``photo`` mixes them all
as a phone photo would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

FRAME = 128
GLYPH = 32


@dataclass(frozen=True)
class Look:
    """Paper and ink levels (0..1, gray) and their colours (BGR gains)."""

    paper: float
    ink: float
    paper_tint: tuple[float, float, float]
    ink_tint: tuple[float, float, float]


def _look(rng: np.random.Generator, board: bool) -> Look:
    if board:  # chalk or a light pen on a dark board or screen
        paper, ink = rng.uniform(0.05, 0.3), rng.uniform(0.65, 0.95)
    else:
        paper, ink = rng.uniform(0.6, 0.95), rng.uniform(0.03, 0.3)
    pens = [(1.0, 1.0, 1.0), (1.5, 0.8, 0.5), (0.6, 0.7, 1.4), (1.0, 1.0, 1.0)]
    papers = [(1.0, 1.0, 1.0), (0.9, 0.97, 1.04), (1.02, 1.0, 0.94)]
    return Look(paper, ink, papers[rng.integers(len(papers))], pens[rng.integers(len(pens))])


def place(template: np.ndarray, rng: np.random.Generator, side: float, size: int = FRAME) -> np.ndarray:
    """Ink coverage (float 0..1, size x size): the template, its longer side ``side`` px,
    tilted a little and put near the centre."""
    angle = rng.uniform(-8, 8)
    height, width = template.shape
    scale = side / max(height, width)
    centre = np.array([size / 2, size / 2]) + rng.uniform(-0.08, 0.08, 2) * size
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    matrix[:, 2] += centre - np.array([width / 2, height / 2])
    coverage = cv2.warpAffine(template.astype(np.float32) / 255.0, matrix, (size, size), flags=cv2.INTER_LINEAR)
    return np.clip(coverage, 0.0, 1.0)


def lamp(rng: np.random.Generator, strength: float, size: int = FRAME) -> np.ndarray:
    """Light that falls off from a lamp off to one side: 1 at its brightest, 1-strength at its darkest."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * math.pi)
    lx, ly = 0.5 + 1.2 * math.cos(angle), 0.5 + 1.2 * math.sin(angle)
    distance = np.sqrt((xs - lx) ** 2 + (ys - ly) ** 2)
    field = 1.0 / (1.0 + rng.uniform(1.0, 4.0) * distance**2)
    field = (field - field.min()) / max(float(field.max() - field.min()), 1e-6)
    return (1.0 - strength) + strength * field


def cast_shadow(rng: np.random.Generator, depth: float, size: int = FRAME) -> np.ndarray:
    """A hand's or a phone's shadow: a dark polygon from one edge, penumbra 3-15 px."""
    mask = np.zeros((size, size), np.float32)
    edge = rng.integers(4)
    points = rng.uniform(0, 1, (4, 2)) * size
    reach = rng.uniform(0.25, 0.6) * size
    if edge == 0:
        poly = [(0, 0), (size, 0), (points[0, 0], reach), (points[1, 0], reach * rng.uniform(0.5, 1.2))]
    elif edge == 1:
        poly = [(0, size), (size, size), (points[0, 0], size - reach), (points[1, 0], size - reach * 0.8)]
    elif edge == 2:
        poly = [(0, 0), (0, size), (reach, points[0, 1]), (reach * rng.uniform(0.5, 1.2), points[1, 1])]
    else:
        poly = [(size, 0), (size, size), (size - reach, points[0, 1]), (size - reach * 0.9, points[1, 1])]
    cv2.fillPoly(mask, [np.array(poly, np.int32)], 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(3, 15))
    return 1.0 - depth * mask


def perspective(image: np.ndarray, rng: np.random.Generator, amount: float, border: float) -> np.ndarray:
    size = image.shape[0]
    src = np.float32([[0, 0], [size, 0], [size, size], [0, size]])
    dst = src + rng.uniform(-amount, amount, (4, 2)).astype(np.float32) * size
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=border)


def box_around(coverage: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A drawn box (a form field, a sign's border) around the letter, not touching it."""
    rows, cols = np.flatnonzero(coverage.max(1) > 0.3), np.flatnonzero(coverage.max(0) > 0.3)
    size = coverage.shape[0]
    pad = rng.uniform(0.06, 0.16) * size
    x0, y0 = max(2, int(cols[0] - pad)), max(2, int(rows[0] - pad))
    x1, y1 = min(size - 3, int(cols[-1] + pad)), min(size - 3, int(rows[-1] + pad))
    out = coverage.copy()
    cv2.rectangle(out, (x0, y0), (x1, y1), 1.0, int(rng.integers(1, 4)), cv2.LINE_AA)
    return out


def ruled(size: int, rng: np.random.Generator) -> np.ndarray:
    """Faint ruled lines across the page (coverage 0..0.5)."""
    out = np.zeros((size, size), np.float32)
    spacing = rng.uniform(0.22, 0.4) * size
    start = rng.uniform(0, spacing)
    y = start
    while y < size:
        cv2.line(out, (0, int(y)), (size - 1, int(y + rng.uniform(-3, 3))), 1.0, 1, cv2.LINE_AA)
        y += spacing
    return out * rng.uniform(0.25, 0.5)


def expose(
    coverage: np.ndarray,
    look: Look,
    light: np.ndarray,
    rng: np.random.Generator,
    *,
    defocus: float,
    noise: float,
    jpeg: int | None,
    colour: bool = True,
    specks: float = 0.0,
) -> np.ndarray:
    """Coverage -> a BGR uint8 photo: reflectance x light, defocus, sensor, JPEG.

    ``specks``: the share of pixels stuck dark, and as many stuck bright (dead and hot
    pixels), before the JPEG.
    """
    reflect = look.paper + (look.ink - look.paper) * coverage
    tints = (
        np.array(look.paper_tint)[None, None, :] * (1 - coverage[..., None])
        + np.array(look.ink_tint)[None, None, :] * coverage[..., None]
    )
    image = reflect[..., None] * (tints if colour else 1.0) * light[..., None]
    if defocus > 0:
        image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), defocus)
    image = image + rng.normal(0, noise, image.shape) + rng.normal(0, noise * 0.5, image.shape[:2])[..., None]
    out = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    if specks:
        draw = rng.random(out.shape[:2])
        out[draw < specks], out[draw > 1 - specks] = 0, 255
    if jpeg is not None:
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg)])
        out = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return out


def frame(template: np.ndarray, rng: np.random.Generator, condition: str) -> np.ndarray:
    """One 128x128 BGR frame of ``template`` under ``condition`` (see CONDITIONS)."""
    size = FRAME
    side = rng.uniform(0.3, 0.7) * size
    coverage = place(template, rng, side)
    board = condition == "board"
    look = _look(rng, board)
    light = np.ones((size, size), np.float32)
    defocus, noise, jpeg, warp, specks = 0.0, 0.01, None, 0.0, 0.0
    if condition == "photo":
        light = lamp(rng, rng.uniform(0.25, 0.7))
        if rng.random() < 0.5:
            light = light * cast_shadow(rng, rng.uniform(0.2, 0.55))
        warp, defocus = rng.uniform(0, 0.1), rng.uniform(0.3, 1.6)
        noise, jpeg = rng.uniform(0.005, 0.04), int(rng.integers(35, 86))
    elif condition == "gradient":
        light = lamp(rng, rng.uniform(0.55, 0.8))
    elif condition == "shadow":
        light = lamp(rng, rng.uniform(0.1, 0.3)) * cast_shadow(rng, rng.uniform(0.35, 0.65))
    elif condition == "box":
        coverage = box_around(coverage, rng)
        light = lamp(rng, rng.uniform(0.1, 0.4))
        defocus, jpeg = rng.uniform(0, 1), int(rng.integers(50, 90))
    elif condition == "ruled":
        coverage = np.maximum(coverage, ruled(size, rng))
        light = lamp(rng, rng.uniform(0.1, 0.4))
        defocus, jpeg = rng.uniform(0, 1), int(rng.integers(50, 90))
    elif condition == "board":
        light = lamp(rng, rng.uniform(0.2, 0.5))
        defocus, noise, jpeg = rng.uniform(0.3, 1.2), rng.uniform(0.01, 0.03), int(rng.integers(40, 90))
    elif condition == "blur":
        defocus = rng.uniform(1.8, 3.0)
        light = lamp(rng, rng.uniform(0.1, 0.3))
    elif condition == "jpeg":
        jpeg, noise = int(rng.integers(15, 35)), rng.uniform(0.01, 0.03)
        light = lamp(rng, rng.uniform(0.1, 0.4))
    elif condition == "noise":  # a small or hot sensor in dim light
        light = lamp(rng, rng.uniform(0.1, 0.4))
        defocus, noise, jpeg = rng.uniform(0.3, 1.0), rng.uniform(0.04, 0.08), int(rng.integers(60, 95))
        specks = rng.uniform(0.0005, 0.003) if rng.random() < 0.5 else 0.0
    else:
        raise ValueError(f"unknown condition {condition!r}")
    if warp:
        coverage = perspective(coverage, rng, warp, 0.0)
        light = perspective(light, rng, 0.0, 1.0)
    return expose(coverage, look, light, rng, defocus=defocus, noise=noise, jpeg=jpeg, specks=specks)


def glyph(template: np.ndarray, rng: np.random.Generator, inverted: bool) -> np.ndarray:
    """A clean 32x32 glyph: the letter fit with a 1-3 px margin, dark on white (or inverted)."""
    margin = int(rng.integers(1, 4))
    inner = GLYPH - 2 * margin
    height, width = template.shape
    scale = inner / max(height, width)
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(template, new, interpolation=cv2.INTER_AREA)
    canvas = np.zeros((GLYPH, GLYPH), np.uint8)
    top, left = (GLYPH - new[1]) // 2, (GLYPH - new[0]) // 2
    canvas[top : top + new[1], left : left + new[0]] = small
    return canvas if inverted else 255 - canvas


PHOTO_CONDITIONS = ("photo", "gradient", "shadow", "box", "ruled", "board", "blur", "jpeg", "noise")
GLYPH_CONDITIONS = ("clean", "inverted")
CONDITIONS = GLYPH_CONDITIONS + PHOTO_CONDITIONS


def render(template: np.ndarray, rng: np.random.Generator, condition: str) -> np.ndarray:
    """The benchmark image of ``template`` under ``condition``."""
    if condition in GLYPH_CONDITIONS:
        return glyph(template, rng, condition == "inverted")
    return frame(template, rng, condition)


Renderer = Callable[[np.ndarray, np.random.Generator, str], np.ndarray]


# --- Material that is not a letter (issue: know when there is no letter) -------------

# Digits and signs that look like no letter (0 1 2 5 8 do look like O I Z S B).
SIGNS = "34679#%&@+=*?!$<>{}"


def sign_template(path: str, char: str) -> np.ndarray | None:
    """A sign drawn by a held-out TrueType font, cropped, ink bright (None if it lacks it)."""
    from matplotlib.ft2font import FT2Font

    font = FT2Font(path)
    if font.get_char_index(ord(char)) == 0:
        return None
    font.set_size(72, 72)
    font.set_text(char, 0.0)
    font.draw_glyphs_to_bitmap(antialiased=True)
    image = np.asarray(font.get_image(), dtype=np.uint8)
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    if rows.size == 0:
        return None
    return np.ascontiguousarray(image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


def pen_scribble(rng: np.random.Generator) -> np.ndarray:
    """A random pen scribble: a wandering stroke with momentum, sometimes two."""
    size = 96
    canvas = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        position = rng.uniform(0.3, 0.7, 2) * size
        heading = rng.uniform(0, 2 * math.pi)
        points = [position.copy()]
        for _ in range(int(rng.integers(25, 70))):
            heading += rng.normal(0, 0.5)
            position = np.clip(position + 3.0 * np.array([math.cos(heading), math.sin(heading)]), 4, size - 5)
            points.append(position.copy())
        thickness = int(rng.integers(2, 7))
        cv2.polylines(canvas, [np.array(points, np.int32).reshape(-1, 1, 2)], False, 255, thickness, cv2.LINE_AA)
    rows, cols = np.flatnonzero(canvas.any(axis=1)), np.flatnonzero(canvas.any(axis=0))
    return np.ascontiguousarray(canvas[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


NONLETTER_CONDITIONS = (
    "blank", "sign-photo", "scribble-photo", "sign-glyph", "scribble-glyph", "several-photo", "cut-off-photo",
)  # fmt: skip


def several_letters(templates: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Two or three letters of one font side by side, a hair apart or touching (ink bright, cropped)."""
    height = 80
    parts = [cv2.resize(t, (max(1, round(t.shape[1] * height / t.shape[0])), height)) for t in templates]
    gap = int(rng.integers(-3, 4))
    width = sum(p.shape[1] for p in parts) + gap * (len(parts) - 1) + 2 * height
    canvas = np.zeros((height + 8, width), np.uint8)
    x = 4
    for part in parts:
        region = canvas[4 : 4 + height, x : x + part.shape[1]]
        np.maximum(region, part[:, : region.shape[1]], out=region)
        x += part.shape[1] + gap
    rows, cols = np.flatnonzero(canvas.any(axis=1)), np.flatnonzero(canvas.any(axis=0))
    return np.ascontiguousarray(canvas[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


def cut_off_frame(template: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A photo frame whose letter runs off one edge: 40-60 % of it out of view."""
    size = FRAME
    side = rng.uniform(0.5, 0.7) * size
    coverage = place(template, rng, side)
    shift = int(side * rng.uniform(0.4, 0.6)) + int(size / 2 - side / 2)
    direction = int(rng.integers(4))
    matrix = np.float32([[1, 0, 0], [0, 1, 0]])
    matrix[direction // 2, 2] = shift if direction % 2 else -shift
    coverage = cv2.warpAffine(coverage, matrix, (size, size))
    look = _look(rng, False)
    light = lamp(rng, rng.uniform(0.25, 0.7))
    return expose(coverage, look, light, rng, defocus=rng.uniform(0.3, 1.2), noise=rng.uniform(0.005, 0.03),
                  jpeg=int(rng.integers(40, 90)))  # fmt: skip


def blank_frame(rng: np.random.Generator) -> np.ndarray:
    """A photo-like frame of paper (or a board) with nothing written on it."""
    empty = np.zeros((8, 8), np.uint8)
    empty[4, 4] = 1  # one speck of sub-threshold ink: the frame is drawn like a letter's, minus the letter
    return frame(empty, rng, "photo" if rng.random() < 0.8 else "board")


def nonletter(template: np.ndarray | None, rng: np.random.Generator, condition: str) -> np.ndarray:
    """A non-letter image: a blank frame, or a sign or scribble as a photo frame or a 32x32 glyph."""
    if condition == "blank":
        return blank_frame(rng)
    assert template is not None
    if condition == "cut-off-photo":
        return cut_off_frame(template, rng)
    if condition.endswith("-photo"):
        return frame(template, rng, "photo")
    return glyph(template, rng, inverted=rng.random() < 0.5)
