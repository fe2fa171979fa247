"""The light: flattening uneven illumination and telling the ink's polarity.

A page under a lamp is brighter on one side than the other and carries shadows; a
letter is a thin structure on it. :func:`glyph_bright` estimates the background at a
scale larger than a stroke and divides it out, so what follows sees the ink as a
share of the local light: 0 on the paper, near 1 on a stroke, with no gradient left.
"""

from __future__ import annotations

import cv2
import numpy as np

from lettercnn.preprocess.image import quantile, to_levels

# Illumination flattening (:func:`glyph_bright`): the background is estimated on a copy
# whose shorter side is this many pixels (cheap, and smoother than the full image)...
BACKGROUND_SIDE = 64
# ...by a grey closing (opening for light ink) of its BACKGROUND_MEDIAN median: the
# closing's dilation takes the brightest pixel under its element (the opening's erosion
# the darkest), so with a hot pixel in nearly every element (a few hundred in a frame),
# or a noisy sensor's peaks, the estimate followed them instead of the paper, and half
# of a blank page came out as ink. Its element is BACKGROUND_STROKES
# times the stroke width, within these fractions of that side: wider than the strokes
# (a bold letter filling a tight crop has strokes ~20 % of its side), narrower than
# the light's own changes...
BACKGROUND_MEDIAN = 3
BACKGROUND_STROKES = 2.5
BACKGROUND_KERNEL_FRACTIONS = (0.25, 0.6)
# ...the stroke width measured on a local threshold: a mean over this fraction of the
# longer side (wider than a stroke, or a bold one comes out hollow), ink this far above it (a share of the image's range, or at least this many levels).
STROKE_BLOCK_FRACTION = 0.5
STROKE_OFFSET_FRACTION = 0.15
STROKE_MIN_OFFSET = 4.0
# Divide by no less than this background level: a black frame has no light to divide out.
BACKGROUND_FLOOR = 0.02
# Light ink's excess over its board is divided by the brightest ink's excess nearby,
# but by no less than this: where there is no ink, the board's noise must not be
# stretched into ink (chalk on a board is 0.3-0.8 above it).
LIGHT_INK_FLOOR = 0.25
# Polarity (:func:`dark_ink`): the median window, a fraction of the downsized side...
POLARITY_WINDOW_FRACTION = 0.5
# ...deviations from it smaller than this (in 1/255 levels) or 3 median deviations are noise...
POLARITY_MIN_DEVIATION = 6.0
# ...and one side must hold this much more of the strong deviation than the other to decide.
POLARITY_DECISIVE = 0.3
# Below this range of gray levels (on a 0..1 scale) an image is flat: there is no
# polarity to tell, and stretching such a range to 0..255 would overflow float32.
MIN_POLARITY_RANGE = 1e-6


def glyph_bright(gray: np.ndarray) -> np.ndarray:
    """The ink as a bright signal on a flat dark background, whatever the light.

    A page under a lamp is brighter on one side than the other and carries shadows;
    a letter is a thin structure on it. So the background (paper, board, screen) is
    estimated at a scale larger than a stroke, by a grey closing (dark ink) or
    opening (light ink) of a downsized copy, and divided out: ``1 - gray / paper``
    for dark ink, the same on the negative for light ink. What is left is the ink's
    share of the local light, 0 on the background, near 1 on a black stroke, and
    free of the lighting gradient. Light ink (chalk, a lit screen) gets its excess
    over the board (an opening) divided by the excess of the brightest ink nearby (a
    dilation): 1 on the ink whether the light is bright or dim. The polarity is decided on a flattened copy too,
    see :func:`dark_ink`.

    Args:
        gray: float32 gray image in [0, 1].

    Returns:
        float32 in [0, 1], the ink bright. A flat image gives all zeros.
    """
    low, high = float(gray.min()), float(gray.max())
    if high - low < MIN_POLARITY_RANGE:
        return np.zeros_like(gray)
    small = _downsized(gray)
    dark = dark_ink(gray, small)
    kernel = _background_kernel(small, dark)
    if kernel is None:  # strokes as wide as the frame: a tight crop, nothing to flatten
        stretched = (gray - low) / (high - low)
        return (1.0 - stretched if dark else stretched).astype(np.float32)
    small = cv2.medianBlur(small, BACKGROUND_MEDIAN)
    if dark:
        paper = _upsize(cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel), gray.shape)
        signal = 1.0 - gray / np.maximum(paper, BACKGROUND_FLOOR)
    else:  # light ink: the excess over the board, as a share of the ink's local excess
        board = cv2.morphologyEx(small, cv2.MORPH_OPEN, kernel)
        contrast = cv2.dilate(small, kernel) - board  # the brightest ink nearby, over the board
        signal = (gray - _upsize(board, gray.shape)) / np.maximum(_upsize(contrast, gray.shape), LIGHT_INK_FLOOR)
    return np.clip(signal, 0.0, 1.0).astype(np.float32)


def dark_ink(gray: np.ndarray, small: np.ndarray | None = None) -> bool:
    """Whether the glyph is darker than its background (ink on paper, not chalk on a board).

    The background is taken as the median of a wide window (a letter covers less than
    half of it; a shadow edge survives a median). Ink deviates from it strongly one
    way, noise both ways alike: the side with more strong deviation is the ink.
    When the two are close (a thin glyph, a busy scene), the border decides: it is
    background, and is compared with the Otsu level of the image.

    Args:
        gray: float32 gray image in [0, 1].
        small: ``gray`` downsized by :func:`_downsized`, if already made.
    """
    if small is None:
        small = _downsized(gray)
    levels = to_levels(small)
    window = max(3, int(min(small.shape) * POLARITY_WINDOW_FRACTION) | 1)
    deviation = levels.astype(np.int16) - cv2.medianBlur(levels, window).astype(np.int16)
    margin = max(POLARITY_MIN_DEVIATION, 3.0 * float(np.median(np.abs(deviation))))
    darker = float(np.clip(-deviation - margin, 0, None).sum())
    brighter = float(np.clip(deviation - margin, 0, None).sum())
    if abs(darker - brighter) > POLARITY_DECISIVE * (darker + brighter):
        return darker > brighter
    ring = np.concatenate([small[0, :], small[-1, :], small[:, 0], small[:, -1]])
    otsu, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(np.median(ring)) * 255.0 > otsu


def _downsized(gray: np.ndarray) -> np.ndarray:
    """``gray`` shrunk so its shorter side is BACKGROUND_SIDE (never enlarged)."""
    height, width = gray.shape
    scale = min(1.0, BACKGROUND_SIDE / min(height, width))
    if scale >= 1.0:
        return gray
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def _background_kernel(small: np.ndarray, dark: bool) -> np.ndarray | None:
    """The structuring element that removes the strokes but follows the light, or
    ``None`` when the strokes are too wide for any (a tight crop of a bold letter:
    there is too little background around them to estimate the light from).

    Wider than the strokes, by BACKGROUND_STROKES times their width as a local
    threshold measures it (ink area over half its edge), within a share of the
    shorter side: a tight crop of a bold letter has strokes a fifth of the frame wide;
    a letter on a page under a lamp has thin ones and a light that changes quickly.
    """
    levels = to_levels(small if not dark else 1.0 - small)  # ink bright
    shorter = min(small.shape)
    spread = quantile(levels, 0.99) - quantile(levels, 0.01)
    block = max(3, int(max(small.shape) * STROKE_BLOCK_FRACTION) | 1)
    offset = -max(STROKE_MIN_OFFSET, STROKE_OFFSET_FRACTION * spread * 255.0)
    ink = cv2.adaptiveThreshold(levels, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, offset)
    area = float(ink.sum())
    edge = area - float(cv2.erode(ink, np.ones((3, 3), np.uint8)).sum())
    stroke = 2.0 * area / edge if edge > 0 else 0.0
    smallest, largest = (fraction * shorter for fraction in BACKGROUND_KERNEL_FRACTIONS)
    if BACKGROUND_STROKES * stroke > largest:
        return None
    side_px = max(3, int(max(smallest, BACKGROUND_STROKES * stroke)) | 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side_px, side_px))


def _upsize(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A background estimate back at the analysis size, smooth (no blocky steps)."""
    if small.shape == shape:
        return small
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
