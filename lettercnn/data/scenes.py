"""Photo-like training scenes: a letter on paper, a board or a screen, as a camera sees it.

The runtime reads letters out of whole frames -- a phone photo, a webcam's region of
interest -- through :func:`lettercnn.preprocess.canonical`. To learn what that gives,
training draws such frames and passes them through the same function::

    template --hand (stroke, slant, aspect, bend)--> ink coverage, letter 25-85 % of the frame
             + what else is in view: neighbouring letters cut off by the frame, a box or
               form field, ruled or squared paper, an underline, specks
             --surface (paper / board / screen, texture)--> reflectance
             x light (gradient, lamp, cast shadow with a penumbra, vignette)
             --perspective--> --lens (defocus, motion)--> --sensor (noise)--> --JPEG-->
             uint8 gray frame

Each scene draws everything from the sample's own generator, so a set is the same
for a seed whatever the order or number of workers. Numpy and OpenCV only.

The field benchmark (``benchmarks/fieldsim.py``) has its own camera model, written
apart from this one, so that it does not only measure how well this code was learnt.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from lettercnn.data.augment import change_stroke, elastic_warp, fit_affine, linear_map, noise_patch


@dataclass(frozen=True)
class SceneConfig:
    """How training scenes are drawn. Probabilities are per scene, ranges uniform.

    Attributes:
        frame: range of the frame's side, pixels (a webcam ROI is ~240, a thumbnail
            ~64; canonical works relative to the frame, so a small one is cheaper and
            teaches the same).
        letter: range of the letter's longer side as a share of the frame.
        offset: how far the letter's centre may sit from the frame's, a share of it.
        neighbours_p: chance of neighbouring letters, partly out of view, left and right.
        box_p: chance of a box drawn around the letter (a form field, a sign).
        rules_p: chance of ruled lines; squared_p: of squared paper.
        underline_p, specks_p: chance of an underline, of dirt specks.
        board_p, screen_p: chance of chalk on a dark board, of a screen; else paper.
        gradient: range of the light's fall-off across the frame.
        shadow_p: chance of a cast shadow; depth: how much light it takes.
        perspective_p, perspective: chance and size (share of the side) of a tilt.
        blur_p, blur_sigma: defocus; motion_p: a short motion blur.
        noise: range of sensor noise (std, on 0..1).
        jpeg_p, jpeg_quality: JPEG compression.
    """

    frame: tuple[int, int] = (72, 144)
    letter: tuple[float, float] = (0.25, 0.85)
    offset: float = 0.12
    neighbours_p: float = 0.3
    box_p: float = 0.15
    rules_p: float = 0.15
    squared_p: float = 0.06
    underline_p: float = 0.05
    specks_p: float = 0.25
    board_p: float = 0.15
    screen_p: float = 0.1
    gradient: tuple[float, float] = (0.0, 0.75)
    shadow_p: float = 0.4
    shadow_depth: tuple[float, float] = (0.15, 0.65)
    perspective_p: float = 0.5
    perspective: float = 0.12
    blur_p: float = 0.6
    blur_sigma: tuple[float, float] = (0.3, 2.2)
    motion_p: float = 0.1
    noise: tuple[float, float] = (0.0, 0.05)
    jpeg_p: float = 0.5
    jpeg_quality: tuple[int, int] = (25, 92)


DEFAULT_SCENE = SceneConfig()
# Handwriting applied to the letter before it is placed (ranges either way).
ROTATION_DEG = 10.0
SHEAR = 0.3
LOG_ASPECT = 0.3
STROKE_P = 0.4
STROKE_PIXELS = (-2, -1, 1, 2, 3)
ELASTIC_P = 0.5
ELASTIC_PX = (0.5, 2.0)
# Templates are drawn at ~64 px em; a letter is first put on a canvas this big, then
# scaled into the frame, so the hand's distortions are the same whatever the frame size.
HAND_CANVAS = 96
HAND_SIDE = 72.0


def render_scene(
    template: np.ndarray | None,
    rng: np.random.Generator,
    neighbours: Sequence[np.ndarray] = (),
    config: SceneConfig = DEFAULT_SCENE,
) -> np.ndarray:
    """One letter in a photo-like frame: uint8 gray (side, side), either polarity.

    Args:
        template: the letter's cropped uint8 template, ink bright; ``None`` for a
            scene with no letter (a blank page, an empty box).
        rng: the sample's generator.
        neighbours: templates that may appear beside it, partly out of view (other
            letters of the same font); used with ``config.neighbours_p``.
        config: what the scenes hold and how the camera sees them.

    Returns:
        The frame, before :func:`lettercnn.preprocess.canonical`.
    """
    side = int(rng.integers(config.frame[0], config.frame[1] + 1))
    letter_side = rng.uniform(*config.letter) * side
    centre = side / 2 + rng.uniform(-config.offset, config.offset, 2) * side
    if template is None:
        coverage = (
            _empty_box(rng, letter_side, centre, side)
            if rng.random() < config.box_p
            else np.zeros((side, side), np.float32)
        )
    else:
        coverage = _place(_hand(template, rng), letter_side, centre, side)
    if neighbours and rng.random() < config.neighbours_p:
        coverage = np.maximum(coverage, _neighbours(neighbours, rng, letter_side, centre, side))
    coverage = _extras(coverage, rng, config, letter_side, side)
    reflectance, ink_level = _surface(coverage, rng, config)
    light = _light(rng, config, side)
    image = reflectance * light
    if rng.random() < config.perspective_p:
        image = _perspective(image, rng, config.perspective)
    return _camera(image, rng, config, abs(ink_level))


def _hand(template: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The template with a hand's irregularities on a HAND_CANVAS square, uint8 coverage."""
    image = template
    if rng.random() < STROKE_P:
        image = change_stroke(image, int(rng.choice(STROKE_PIXELS)))
    draws = rng.uniform(-1.0, 1.0, size=3)
    linear = linear_map(draws[0] * ROTATION_DEG, draws[1] * SHEAR, draws[2] * LOG_ASPECT)
    matrix = fit_affine(image, linear, HAND_SIDE, HAND_CANVAS)
    canvas = cv2.warpAffine(image, matrix, (HAND_CANVAS, HAND_CANVAS), flags=cv2.INTER_LINEAR, borderValue=0)
    if rng.random() < ELASTIC_P:
        bent = elastic_warp(canvas, rng, rng.uniform(*ELASTIC_PX))
        canvas = bent if bent.any() else canvas
    return canvas


def _place(hand: np.ndarray, letter_side: float, centre: np.ndarray, side: int) -> np.ndarray:
    """Scale a hand canvas so its ink's longer side is ``letter_side``, centred at ``centre``."""
    matrix = fit_affine(hand, np.eye(2), letter_side, side, (float(centre[0] - side / 2), float(centre[1] - side / 2)))
    placed = cv2.warpAffine(hand, matrix, (side, side), flags=cv2.INTER_AREA, borderValue=0)
    return placed.astype(np.float32) / 255.0


def _empty_box(rng: np.random.Generator, letter_side: float, centre: np.ndarray, side: int) -> np.ndarray:
    """A box with nothing in it (an empty form field), around where a letter would be."""
    half = letter_side * rng.uniform(0.5, 0.8)
    corner0 = (int(centre[0] - half), int(centre[1] - half))
    corner1 = (int(centre[0] + half), int(centre[1] + half))
    thickness = int(rng.integers(1, max(2, side // 40) + 1))
    return _drawn(side, lambda c: cv2.rectangle(c, corner0, corner1, 1.0, thickness, cv2.LINE_AA))


def _neighbours(
    templates: Sequence[np.ndarray], rng: np.random.Generator, letter_side: float, centre: np.ndarray, side: int
) -> np.ndarray:
    """Letters left and/or right of the main one, a word's spacing away, cut off by the frame."""
    out = np.zeros((side, side), np.float32)
    for direction in (-1, 1):
        if rng.random() < 0.35:
            continue
        template = templates[int(rng.integers(len(templates)))]
        size = letter_side * rng.uniform(0.7, 1.1)
        gap = letter_side * rng.uniform(0.15, 0.6)
        shift = direction * (letter_side / 2 + gap + size / 2)
        spot = centre + np.array([shift, rng.uniform(-0.1, 0.1) * letter_side])
        out = np.maximum(out, _place(_hand(template, rng), size, spot, side))
    return out


def _extras(
    coverage: np.ndarray, rng: np.random.Generator, config: SceneConfig, letter_side: float, side: int
) -> np.ndarray:
    """What else is drawn on the page: a box, rules, squares, an underline, specks."""
    out = coverage
    rows, cols = np.flatnonzero(coverage.max(axis=1) > 0.3), np.flatnonzero(coverage.max(axis=0) > 0.3)
    if rows.size and rng.random() < config.box_p:
        pad = rng.uniform(0.0, 0.25) * letter_side
        corner0 = (int(cols[0] - pad - rng.uniform(0, 4)), int(rows[0] - pad - rng.uniform(0, 4)))
        corner1 = (int(cols[-1] + pad + rng.uniform(0, 4)), int(rows[-1] + pad + rng.uniform(0, 4)))
        thickness = int(rng.integers(1, max(2, side // 40) + 1))
        out = np.maximum(out, _drawn(side, lambda c: cv2.rectangle(c, corner0, corner1, 1.0, thickness, cv2.LINE_AA)))
    if rng.random() < config.rules_p or rng.random() < config.squared_p:
        out = np.maximum(out, _ruling(rng, side, letter_side, squared=rng.random() < 0.3))
    if rows.size and rng.random() < config.underline_p:
        y = int(rows[-1] + rng.uniform(1, 0.15 * letter_side))
        x0, x1 = int(cols[0] - rng.uniform(0, 0.3) * letter_side), int(cols[-1] + rng.uniform(0, 0.3) * letter_side)
        out = np.maximum(out, _drawn(side, lambda c: cv2.line(c, (x0, y), (x1, y + int(rng.integers(-2, 3))), 1.0, 2)))
    if rng.random() < config.specks_p:
        specks = np.zeros((side, side), np.float32)
        for _ in range(int(rng.integers(1, 8))):
            spot = (int(rng.integers(side)), int(rng.integers(side)))
            cv2.circle(specks, spot, int(rng.integers(0, max(1, side // 60) + 1)), float(rng.uniform(0.4, 1.0)), -1)
        out = np.maximum(out, specks)
    return out


def _drawn(side: int, draw: object) -> np.ndarray:
    """A blank coverage canvas with something drawn on it by ``draw(canvas)``."""
    canvas = np.zeros((side, side), np.float32)
    draw(canvas)  # type: ignore[operator]
    return canvas


def _ruling(rng: np.random.Generator, side: int, letter_side: float, squared: bool) -> np.ndarray:
    """Ruled or squared paper: thin, fainter lines across the whole frame, a little tilted."""
    canvas = np.zeros((side, side), np.float32)
    spacing = letter_side * rng.uniform(0.5, 1.3) if not squared else letter_side * rng.uniform(0.2, 0.5)
    tilt = rng.uniform(-0.08, 0.08) * side
    start = rng.uniform(0, spacing)
    thickness = int(rng.integers(1, 3))
    for position in np.arange(start, side, spacing):
        cv2.line(canvas, (0, int(position)), (side - 1, int(position + tilt)), 1.0, thickness, cv2.LINE_AA)
        if squared:
            cv2.line(canvas, (int(position), 0), (int(position - tilt), side - 1), 1.0, thickness, cv2.LINE_AA)
    return canvas * rng.uniform(0.2, 0.7)


def _surface(coverage: np.ndarray, rng: np.random.Generator, config: SceneConfig) -> tuple[np.ndarray, float]:
    """Reflectance of paper, board or screen with the ink on it; and the ink's contrast."""
    kind = rng.random()
    if kind < config.board_p:  # chalk: bright, grainy ink on a dark board
        background, ink = rng.uniform(0.04, 0.35), rng.uniform(0.55, 0.95)
        grain = 1.0 + 0.25 * noise_patch(rng, coverage.shape)
        coverage = np.clip(coverage * grain, 0.0, 1.0)
    elif kind < config.board_p + config.screen_p:  # a screen: either polarity, flat
        if rng.random() < 0.5:
            background, ink = rng.uniform(0.0, 0.25), rng.uniform(0.6, 1.0)
        else:
            background, ink = rng.uniform(0.7, 1.0), rng.uniform(0.0, 0.3)
    else:  # paper and a pen, pencil or marker
        background, ink = rng.uniform(0.55, 0.97), rng.uniform(0.0, 0.4)
        if ink > background - 0.25:
            ink = background - 0.25
    texture = rng.uniform(0.0, 0.05) * _smooth_noise(rng, coverage.shape)
    reflectance = (background + (ink - background) * coverage) * (1.0 + texture)
    return reflectance.astype(np.float32), ink - background


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Low-frequency noise of unit scale: paper fibre, board smudge."""
    coarse = noise_patch(rng, (max(2, shape[0] // 8), max(2, shape[1] // 8)))
    return cv2.resize(np.ascontiguousarray(coarse), (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


@functools.lru_cache(maxsize=8)
def _grid(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates on a 0..1 scale, float32, cached per frame side."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32) / side
    return xs, ys


def _light(rng: np.random.Generator, config: SceneConfig, side: int) -> np.ndarray:
    """The light on the page: a gradient or a lamp's spot, a cast shadow, a vignette."""
    xs, ys = _grid(side)
    strength = rng.uniform(*config.gradient)
    angle = rng.uniform(0, 2 * math.pi)
    if rng.random() < 0.5:  # a straight fall-off across the page
        ramp = (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle)
        ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    else:  # a lamp near the page: a bright spot fading out
        spot = (0.5 + rng.uniform(-0.9, 0.9), 0.5 + rng.uniform(-0.9, 0.9))
        distance = np.hypot(xs - spot[0], ys - spot[1])
        ramp = 1.0 - (distance - distance.min()) / max(float(distance.max() - distance.min()), 1e-6)
    light = 1.0 - strength * (1.0 - ramp)
    if rng.random() < config.shadow_p:
        light = light * (1.0 - rng.uniform(*config.shadow_depth) * _shadow(rng, side))
    if rng.random() < 0.2:  # lens vignette
        light = light * (1.0 - rng.uniform(0.1, 0.35) * ((xs - 0.5) ** 2 + (ys - 0.5) ** 2) * 2)
    return light.astype(np.float32)


def _shadow(rng: np.random.Generator, side: int) -> np.ndarray:
    """A cast shadow's mask (0..1): a blurred half-plane, wedge or blob over part of the frame."""
    mask = np.zeros((side, side), np.float32)
    shape = rng.random()
    if shape < 0.5:  # the edge of a hand, a phone, a wall: a half-plane
        angle = rng.uniform(0, 2 * math.pi)
        xs, ys = _grid(side)
        mask = (((xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle)) > rng.uniform(-0.3, 0.35)).astype(
            np.float32
        )
    elif shape < 0.8:  # a wedge coming in from the border
        points = rng.uniform(-0.2, 1.2, (3, 2)) * side
        cv2.fillPoly(mask, [points.astype(np.int32)], 1.0)
    else:  # a blob: a head or a lamp arm
        centre = (int(rng.uniform(0, side)), int(rng.uniform(0, side)))
        axes = (int(rng.uniform(0.2, 0.6) * side), int(rng.uniform(0.2, 0.6) * side))
        cv2.ellipse(mask, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    penumbra = rng.uniform(0.5, 0.15 * side)
    return cv2.GaussianBlur(mask, (0, 0), penumbra)


def _perspective(image: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """The page seen at an angle: its corners moved by up to ``amount`` of the side."""
    side = image.shape[0]
    corners = np.float32([[0, 0], [side, 0], [side, side], [0, side]])
    moved = corners + rng.uniform(-amount, amount, (4, 2)).astype(np.float32) * side
    matrix = cv2.getPerspectiveTransform(corners, moved)
    return cv2.warpPerspective(image, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _camera(image: np.ndarray, rng: np.random.Generator, config: SceneConfig, contrast: float) -> np.ndarray:
    """Lens, sensor and codec: defocus or motion blur, noise, JPEG; uint8 out."""
    if rng.random() < config.blur_p:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(*config.blur_sigma))
    if rng.random() < config.motion_p:
        length = int(rng.integers(3, 8))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        image = cv2.filter2D(image, -1, kernel / max(float(kernel.sum()), 1e-6))
    noise = rng.uniform(*config.noise) * min(1.0, 2.5 * contrast)
    image = image + noise * noise_patch(rng, image.shape)
    frame = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if rng.random() < config.jpeg_p:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE) if ok else None
        frame = frame if decoded is None else decoded
    return frame
