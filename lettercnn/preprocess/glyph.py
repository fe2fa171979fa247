"""From an image to the model's input: threshold, choose, crop, fit, normalise.

image --gray--> float [0, 1] --glyph_bright--> ink bright, light flattened
      --threshold (Otsu | adaptive)--> mask --choose_glyph--> the letter's mask
      --stands_out? whole? (else no glyph)--> crop + clean --fit--> uint8 32x32 (canonical)
      --normalize--> float32 (1, 32, 32)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Literal

import cv2
import numpy as np

from lettercnn.preprocess.choice import choose_glyph, inside_part
from lettercnn.preprocess.image import MAX_WORK_SIDE, load_image, quantile, to_levels, work_gray
from lettercnn.preprocess.light import glyph_bright

Threshold = Literal["otsu", "adaptive"]
THRESHOLDS: tuple[str, ...] = ("otsu", "adaptive")
# A glyph whose contrast against the background is below this (on a 0..1 scale) is
# no glyph at all: a blank page, a flat frame. The canonical image is then all black.
MIN_CONTRAST = 0.08
# A glyph whose ink clears the background by fewer than this many of the background's
# robust standard deviations is the page's own noise (see :func:`stands_out`).
NOISE_SIGMAS = 4.5
# ...and by at least this share of the light: a pen or pencil takes far more (ink on
# paper 0.4-0.95); what a smooth lamp fall-off leaves after flattening takes less.
MIN_GLYPH_CONTRAST = 0.15
# A letter cut off by the image's edge (:func:`cut_off`) touches the left or the right
# side and spans at most this share of the width, or the same with top and bottom; a
# tight crop touches opposite sides, a whole letter in a photo none.
CUT_OFF_MAX_SPAN = 0.75
# Block size of the adaptive threshold, as a fraction of the shorter image side.
ADAPTIVE_BLOCK_FRACTION = 0.25


@dataclass(frozen=True)
class InputSpec:
    """What the model takes; written into every exported model's metadata.

    Attributes:
        size: side of the square input, pixels.
        channels: 1 (gray).
        polarity: the glyph is white (1.0) on black (0.0).
        mean, std: ``x = (pixel / 255 - mean) / std``. 0.5/0.5 maps [0, 1] onto
            [-1, 1]: centred enough for the first convolution, no dataset statistics
            to carry around or get wrong.
        margin: empty pixels kept on each side of the glyph's longer side (EMNIST
            keeps 2 of 28; we keep 2 of 32 so thin strokes survive the downscale).
    """

    size: int = 32
    channels: int = 1
    polarity: str = "white_on_black"
    mean: float = 0.5
    std: float = 0.5
    margin: int = 2

    def to_dict(self) -> dict[str, object]:
        """The spec as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> InputSpec:
        """Rebuild a spec from :meth:`to_dict` output, ignoring unknown keys."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)  # type: ignore[arg-type]


DEFAULT_SPEC = InputSpec()


def glyph_mask(bright: np.ndarray, threshold: Threshold = "otsu") -> np.ndarray | None:
    """Binary mask of the glyph in a bright-on-dark image, or ``None`` if there is none.

    Args:
        bright: float32 gray image in [0, 1], glyph bright.
        threshold: ``"otsu"`` (one global level; clean scans, renders) or
            ``"adaptive"`` (a local mean; photos under uneven light).

    Returns:
        A bool mask of the glyph's components (specks and frame edges dropped).
    """
    mask = threshold_mask(to_levels(bright), threshold)
    return None if mask is None else choose_glyph(mask)


def threshold_mask(levels: np.ndarray, threshold: Threshold) -> np.ndarray | None:
    """All that is brighter than the background (``levels``: :func:`to_levels` of the
    bright image): uint8 0/255, or ``None`` when flat."""
    if threshold not in THRESHOLDS:
        raise ValueError(f"unknown threshold {threshold!r}; expected one of {', '.join(THRESHOLDS)}")
    low, high = quantile(levels, 0.05), quantile(levels, 0.995)
    if high - low < MIN_CONTRAST:
        return None
    # Stretch the contrast so both thresholds see the full 0..255 range.
    lut = np.clip((np.arange(256) / 255.0 - low) / (high - low), 0.0, 1.0)
    stretched = (lut * 255.0).astype(np.uint8)[levels]
    if threshold == "otsu":
        _, mask = cv2.threshold(stretched, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    else:
        block = max(3, int(min(stretched.shape) * ADAPTIVE_BLOCK_FRACTION) | 1)
        mask = cv2.adaptiveThreshold(
            stretched, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, -int(255 * MIN_CONTRAST)
        )
    return mask


def _fit(glyph: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Scale a cropped glyph into the square input, keeping aspect, centred with margin."""
    inner = spec.size - 2 * spec.margin
    height, width = glyph.shape
    scale = inner / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(glyph, (new_w, new_h), interpolation=interpolation)
    canvas = np.zeros((spec.size, spec.size), dtype=np.float32)
    top, left = (spec.size - new_h) // 2, (spec.size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


def canonical(
    image: np.ndarray | str | os.PathLike[str],
    *,
    spec: InputSpec = DEFAULT_SPEC,
    threshold: Threshold = "otsu",
) -> np.ndarray:
    """Any image to the canonical glyph: uint8 (size, size), white on black.

    Args:
        image: a path, or an array (gray, BGR or BGRA; uint8, uint16, float, bool).
        spec: the input spec (size, margin).
        threshold: how the glyph is told from the background, see :func:`glyph_mask`.

    Returns:
        uint8 array (spec.size, spec.size). An image with no glyph (blank, flat, ink
        no stronger than the page's noise) or only part of one (cut off by the
        image's edge, see :func:`cut_off`) gives an all-black array.

    Raises:
        ImageError: unreadable file or an array that is not an image.
    """
    array = load_image(image) if isinstance(image, (str, os.PathLike)) else image
    bright = glyph_bright(work_gray(array, MAX_WORK_SIDE))
    levels = to_levels(bright)
    mask = threshold_mask(levels, threshold)
    mask = None if mask is None else choose_glyph(mask)
    for look in range(2):  # the second: without the parts that touch the image's edge
        if look:
            mask = None if mask is None else inside_part(mask)
        box = None if mask is None else bounds(mask)
        if box is not None and stands_out(levels, mask, box) and not cut_off(mask, box):
            return glyph_image(bright, levels, mask, spec, box)
    return np.zeros((spec.size, spec.size), dtype=np.uint8)


def bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The bounding box of ``mask`` (bool, non-empty): top, bottom, left, right, the
    ends exclusive."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def cut_off(mask: np.ndarray, box: tuple[int, int, int, int] | None = None) -> bool:
    """Whether the glyph under ``mask`` (bool, non-empty) runs off the image: a letter
    half out of the camera's view, or the dark band a lamp leaves along one edge of
    a blank page; not a letter to read.

    It hugs one side: it touches the left edge or the right one (not both) and spans at
    most CUT_OFF_MAX_SPAN of the width, or the same with top and bottom. A tight crop
    of a letter touches opposite sides (or fills the image), and a whole letter in a
    photo touches none. ``box``: the mask's :func:`bounds`, if already found.
    """
    first_row, end_row, first_col, end_col = bounds(mask) if box is None else box
    height, width = mask.shape
    top, bottom = first_row == 0, end_row == height
    left, right = first_col == 0, end_col == width
    sideways = left != right and end_col - first_col <= CUT_OFF_MAX_SPAN * width
    upright = top != bottom and end_row - first_row <= CUT_OFF_MAX_SPAN * height
    return bool(sideways or upright)


def stands_out(levels: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int] | None = None) -> bool:
    """Whether the glyph under ``mask`` is ink rather than the page's own noise.

    A blank page thresholds into specks of sensor noise and paper grain. Ink stands
    out from the background by many times the background's spread around it (the
    page within half the glyph's size: the light, and with it the noise of a
    flattened image, changes across a frame): its level (the 90th percentile under
    the mask) must clear that background's median by
    NOISE_SIGMAS robust standard deviations (1.4826 median absolute deviations),
    and by MIN_GLYPH_CONTRAST at least.

    Args:
        levels: the bright image as 0..255 levels (see :func:`glyph_bright`).
        mask: bool, the chosen glyph.
        box: its :func:`bounds`, if already found.
    """
    inked = mask.astype(np.uint8)
    levels = cv2.blur(levels, (3, 3))  # noise is measured where a stroke is: a few pixels wide
    first_row, end_row, first_col, end_col = bounds(mask) if box is None else box
    # The page around the glyph, not the whole frame:
    reach = (max(end_row - first_row, end_col - first_col) - 1) // 2 + 2
    top, bottom = max(0, first_row - reach), end_row + reach
    left, right = max(0, first_col - reach), end_col + reach
    around = 1 - cv2.dilate(inked[top:bottom, left:right], np.ones((3, 3), np.uint8))
    background = cv2.calcHist([levels[top:bottom, left:right]], [0], around, [256], [0, 256]).ravel()
    if background.sum() <= 0:
        return True  # nothing but glyph: a tight crop
    cdf = np.cumsum(background)
    median = int(np.searchsorted(cdf, 0.5 * cdf[-1]))
    spread = np.zeros(256)
    np.add.at(spread, np.abs(np.arange(256) - median), background)
    mad = float(np.searchsorted(np.cumsum(spread), 0.5 * cdf[-1]))
    ink = quantile(levels, 0.9, inked) * 255.0
    return ink - median >= max(MIN_GLYPH_CONTRAST * 255.0, NOISE_SIGMAS * 1.4826 * max(mad, 0.5))


def glyph_image(
    bright: np.ndarray,
    levels: np.ndarray,
    mask: np.ndarray,
    spec: InputSpec,
    box: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Crop the glyph under ``mask`` (non-empty, bool) from ``bright`` (``levels``: its
    :func:`to_levels`, already computed for the threshold; ``box``: the mask's
    :func:`bounds`, if already found); fit it as uint8."""
    top, bottom, left, right = bounds(mask) if box is None else box
    # Keep the anti-aliased edge of the strokes (a dilated mask), zero the rest,
    # and stretch the ink to full white so faint pencil and bold marker look alike.
    mask_u8 = mask.astype(np.uint8)
    keep = cv2.dilate(mask_u8, np.ones((3, 3), np.uint8)).astype(bool)
    background = quantile(levels, 0.5, 1 - mask_u8)
    ink = quantile(levels, 0.9, mask_u8)
    glyph = np.clip((bright - background) / max(ink - background, 1e-6), 0.0, 1.0) * keep
    fitted = _fit(glyph[top:bottom, left:right], spec)
    return np.round(np.clip(fitted, 0.0, 1.0) * 255.0).astype(np.uint8)


def normalize(glyph: np.ndarray, spec: InputSpec = DEFAULT_SPEC) -> np.ndarray:
    """Canonical uint8 glyphs (..., size, size) -> float32 model inputs (..., 1, size, size).

    One glyph (size, size) gives one input (1, size, size); a stack (n, size, size)
    gives a batch (n, 1, size, size).
    """
    return ((glyph.astype(np.float32) / 255.0 - spec.mean) / spec.std)[..., None, :, :]


def to_input(
    image: np.ndarray | str | os.PathLike[str],
    *,
    spec: InputSpec = DEFAULT_SPEC,
    threshold: Threshold = "otsu",
) -> np.ndarray:
    """Any image to the model's input, float32 (1, size, size); see :func:`canonical`."""
    return normalize(canonical(image, spec=spec, threshold=threshold), spec)
