"""Training augmentation of canonical glyphs, imitating handwriting and photos.

The model's input is the canonical glyph (:func:`lettercnn.preprocess.canonical`):
white on black, its longer side filling the box inside the margin, centred, the
background exactly zero. Augmentation must keep the glyph on that distribution,
otherwise the model learns from pictures it never sees in the field. So:

- geometry (rotation, slant, aspect) is one affine map re-fitted to the box, as
  canonical would fit the distorted letter; there is no free shift or zoom;
- stroke thickness (dilate/erode) and a mild elastic warp imitate pens and hands;
- noise is an ink texture (uneven pressure) inside the strokes, never on the
  background, which canonical zeroes; blur is renormalised to full white, as
  canonical stretches ink.

Written with OpenCV on the uint8 glyph rather than ``torchvision.transforms.v2``:
on a 32x32 glyph ``v2.RandomAffine`` alone costs ~170 us and ``v2.ElasticTransform``
~800 us per image (torch 2.14, one core), against ~50 us for the whole pipeline
here. The primitives are shared with the synthetic renderer and import no torch.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from lettercnn import preprocess

# Side of the coarse random grid an elastic warp is interpolated from: 4x4 bends a
# stroke once or twice, like a hand, where a per-pixel field would only roughen it.
ELASTIC_GRID = 4
# Side of the stored field of Gaussian noise that noise patches are cut from:
# slicing it is ~40x faster than drawing 64x64 normals per sample.
NOISE_BANK_SIDE = 256
NOISE_BANK_SEED = 20240601
# An erosion that keeps less than this share of the ink broke the strokes: undone.
MIN_INK_KEPT = 0.45


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly glyphs are distorted; the defaults keep every letter legible.

    Attributes:
        rotation_deg: max rotation either way; handwriting leans ~10 degrees, more
            starts to turn an N towards a Z.
        shear: max horizontal slant (tan of the angle); italics are ~0.2.
        aspect: max log change of the width/height ratio (0.15 = +-16%).
        fill: range of the share of the box the longer side fills (canonical: 1.0).
        shift_px: max shift either way, pixels (canonical centres to the pixel).
        stroke_p: chance of a thinner or thicker stroke (one pixel of erosion/dilation).
        elastic_p: chance of an elastic warp.
        elastic_px: size of the elastic displacement, pixels (std of the coarse grid).
        blur_p: chance of a Gaussian blur (a slightly out-of-focus photo).
        blur_sigma: range of the blur's sigma, pixels.
        texture_p: chance of an ink texture.
        texture_std: relative strength of the ink texture.
    """

    rotation_deg: float = 10.0
    shear: float = 0.25
    aspect: float = 0.15
    fill: tuple[float, float] = (0.9, 1.0)
    shift_px: float = 1.0
    stroke_p: float = 0.3
    elastic_p: float = 0.3
    elastic_px: float = 0.8
    blur_p: float = 0.15
    blur_sigma: tuple[float, float] = (0.4, 0.8)
    texture_p: float = 0.2
    texture_std: float = 0.15


@functools.lru_cache(maxsize=1)
def noise_bank() -> np.ndarray:
    """A fixed float32 field of standard normal noise (NOISE_BANK_SIDE square)."""
    rng = np.random.default_rng(NOISE_BANK_SEED)
    bank = rng.standard_normal((NOISE_BANK_SIDE, NOISE_BANK_SIDE), dtype=np.float32)
    bank.setflags(write=False)
    return bank


def noise_patch(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A read-only patch of standard normal noise, cut at a random place of the bank."""
    bank = noise_bank()
    top = int(rng.integers(0, NOISE_BANK_SIDE - shape[0] + 1))
    left = int(rng.integers(0, NOISE_BANK_SIDE - shape[1] + 1))
    return bank[top : top + shape[0], left : left + shape[1]]


def change_stroke(image: np.ndarray, pixels: int) -> np.ndarray:
    """Thicken (``pixels > 0``, dilation) or thin (``pixels < 0``, erosion) bright strokes.

    An erosion that would break the letter (keep less than MIN_INK_KEPT of its ink)
    is not applied.

    Args:
        image: uint8 or float32, strokes bright on dark.
        pixels: how many pixels the stroke grows (negative: shrinks); 0 changes nothing.

    Returns:
        The image with thicker or thinner strokes, same dtype and shape.
    """
    if pixels == 0:
        return image
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (abs(pixels) + 1, abs(pixels) + 1))
    if pixels > 0:
        return cv2.dilate(image, kernel)
    thinned = cv2.erode(image, kernel)
    if thinned.sum(dtype=np.float64) < MIN_INK_KEPT * image.sum(dtype=np.float64):
        return image
    return thinned


# A block of a pixelated glyph is on when this much of it (0..255) is ink: a third keeps
# thin strokes whole, as a pixel font draws them one block wide.
PIXEL_ON = 85


def pixelate(image: np.ndarray, rows: int) -> np.ndarray:
    """The glyph as a pixel or dot-matrix font draws it: square blocks, ``rows`` of them
    from its top to its bottom, each on or off.

    Args:
        image: uint8 (H, W), ink bright on 0, cropped to the glyph.
        rows: blocks across the glyph's height (a pixel font's capital: about 7).

    Returns:
        uint8, the same shape, each block 255 where at least :data:`PIXEL_ON` of it was
        ink (thin strokes stay whole), else 0. A pixelation that would break the glyph
        into more pieces, as too few rows do to a thin script, is not applied: the
        image comes back unchanged.
    """
    height, width = image.shape
    block = max(height / rows, 1.0)
    coarse = cv2.resize(
        image, (max(1, round(width / block)), max(1, round(height / block))), interpolation=cv2.INTER_AREA
    )
    blocks = np.where(coarse >= PIXEL_ON, 255, 0).astype(np.uint8)
    pieces = _pieces(blocks)
    if pieces == 0 or pieces > _pieces(np.where(image >= 128, 255, 0).astype(np.uint8)):
        return image
    return cv2.resize(blocks, (width, height), interpolation=cv2.INTER_NEAREST)


def _pieces(image: np.ndarray) -> int:
    """How many 8-connected pieces of ink a binary uint8 image holds."""
    return cv2.connectedComponents(image, connectivity=8)[0] - 1  # less the background


@functools.lru_cache(maxsize=8)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (x, y) of an image, float32, cached per shape."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs, ys


def elastic_warp(image: np.ndarray, rng: np.random.Generator, magnitude_px: float) -> np.ndarray:
    """Bend an image along a smooth random displacement field.

    Args:
        image: uint8 or float32 (H, W).
        rng: source of the random field.
        magnitude_px: standard deviation of the displacement, pixels.

    Returns:
        The warped image, same dtype and shape; outside is filled with 0.
    """
    height, width = image.shape
    coarse = rng.standard_normal((ELASTIC_GRID, ELASTIC_GRID, 2), dtype=np.float32) * magnitude_px
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)  # (h, w, 2)
    xs, ys = _pixel_grid(height, width)
    return cv2.remap(image, xs + field[..., 0], ys + field[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def linear_map(rotation_deg: float, shear: float, log_aspect: float) -> np.ndarray:
    """The 2x2 map rotation @ slant @ aspect (image coordinates, y down)."""
    angle = math.radians(rotation_deg)
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, sin], [-sin, cos]])
    slant = np.array([[1.0, -shear], [0.0, 1.0]])  # positive shear leans the top right
    ratio = math.exp(log_aspect / 2)
    stretch = np.array([[ratio, 0.0], [0.0, 1.0 / ratio]])
    return rotation @ slant @ stretch


def fit_affine(
    image: np.ndarray, linear: np.ndarray, side: float, out_size: int, shift: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """An affine map that distorts the ink of ``image`` and fits it in a centred box.

    Args:
        image: (H, W), ink bright on 0.
        linear: 2x2 distortion.
        side: the distorted ink's longer side after the fit, pixels.
        out_size: side of the square output the map targets.
        shift: extra shift (x, y) of the centre, pixels.

    Returns:
        A 2x3 float matrix for ``cv2.warpAffine``.

    Raises:
        ValueError: ``image`` has no ink to fit.
    """
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    if rows.size == 0:
        raise ValueError(f"cannot fit an image without ink (shape {image.shape}, all zero)")
    corners = np.array(
        [[cols[0], rows[0]], [cols[-1] + 1, rows[0]], [cols[0], rows[-1] + 1], [cols[-1] + 1, rows[-1] + 1]],
        dtype=np.float64,
    )
    mapped = corners @ linear.T
    low, high = mapped.min(axis=0), mapped.max(axis=0)
    scale = side / max(float((high - low).max()), 1.0)
    matrix = np.empty((2, 3))
    matrix[:, :2] = linear * scale
    centre = (low + high) / 2 * scale
    matrix[:, 2] = out_size / 2 + np.asarray(shift) - centre
    return matrix


class GlyphAugment:
    """Random distortion of a canonical glyph; the training transform.

    Each call seeds a numpy generator from torch's random generator, so augmentation
    follows ``torch.manual_seed`` and differs between DataLoader workers and epochs.

    Args:
        config: the strengths, see :class:`AugmentConfig`.
    """

    def __init__(self, config: AugmentConfig | None = None) -> None:
        self.config = config or AugmentConfig()

    def __repr__(self) -> str:
        return f"GlyphAugment({self.config})"

    @staticmethod
    def _generator() -> np.random.Generator:
        """A generator seeded from torch's: follows ``torch.manual_seed``, differs per worker."""
        import torch  # the training side; the primitives above stay torch-free

        return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))

    def __call__(self, glyph: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Distort one glyph.

        Args:
            glyph: canonical uint8 glyph (size, size).
            rng: a generator to draw from (tests, reproducible previews); default: see class.

        Returns:
            A new uint8 glyph of the same shape.
        """
        if not glyph.any():  # canonical's answer to a blank image: nothing to distort
            return glyph.copy()
        rng = rng or self._generator()
        config, spec = self.config, preprocess.DEFAULT_SPEC
        image = glyph
        if rng.random() < config.stroke_p:
            image = change_stroke(image, int(rng.choice((-1, 1))))
        if rng.random() < config.elastic_p:
            bent = elastic_warp(image, rng, config.elastic_px)
            image = bent if bent.any() else image  # a one-pixel glyph may blur away
        draws = rng.uniform(-1.0, 1.0, size=5)
        linear = linear_map(draws[0] * config.rotation_deg, draws[1] * config.shear, draws[2] * config.aspect)
        # minus one pixel: bilinear sampling spreads the ink half a pixel each way
        side = (spec.size - 2 * spec.margin) * rng.uniform(*config.fill) - 1.0
        matrix = fit_affine(image, linear, side, spec.size, (draws[3] * config.shift_px, draws[4] * config.shift_px))
        image = cv2.warpAffine(image, matrix, (spec.size, spec.size), flags=cv2.INTER_LINEAR, borderValue=0)
        return _photo_touches(image, rng, config)


def _photo_touches(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Ink texture and blur on a uint8 glyph; the background stays exactly zero."""
    texture, blur = rng.random() < config.texture_p, rng.random() < config.blur_p
    if not (texture or blur) or not image.any():
        return image
    ink = image.astype(np.float32)
    if texture:
        ink *= 1.0 + config.texture_std * noise_patch(rng, ink.shape)
    if blur:
        # canonical keeps the blurred edge one pixel around the strokes, inside the
        # strokes' box, and zeroes the rest
        inked = image > 0
        rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
        keep = np.zeros(image.shape, dtype=np.float32)
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        keep[box] = cv2.dilate(inked.astype(np.uint8), np.ones((3, 3), np.uint8))[box]
        ink = cv2.GaussianBlur(ink, (0, 0), rng.uniform(*config.blur_sigma)) * keep
    top = float(ink.max())
    if top > 0.0:
        ink *= 255.0 / top
    return np.clip(ink, 0.0, 255.0).astype(np.uint8)


def train_transform(config: AugmentConfig | None = None) -> GlyphAugment:
    """The augmentation used for training sets.

    Args:
        config: strengths; default :class:`AugmentConfig`.

    Returns:
        A callable uint8 glyph -> uint8 glyph.
    """
    return GlyphAugment(config)
