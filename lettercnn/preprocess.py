"""One preprocessing for training and recognition (numpy and OpenCV only, no torch).

Any image -- a path or an array; gray, BGR or BGRA; uint8, uint16, float or bool;
any size; dark ink on light paper or light on dark -- becomes the model's canonical
input: a white glyph on black, cropped to the glyph, centred keeping its aspect
ratio inside a margin (the EMNIST recipe), 32x32, then normalised::

    image --to_gray--> float [0, 1] --polarity--> glyph bright, background dark
          --threshold (Otsu | adaptive)--> glyph mask, specks and frame edges dropped
          --crop + clean--> glyph box, background zeroed
          --fit--> uint8 32x32 (canonical)   --normalize--> float32 (1, 32, 32)

Training data (image folders and the synthetic set) and ``letters recognize`` both go
through :func:`canonical`, so what the model saw in training is what it sees in the field.

Word mode, :func:`split_word`, cuts a one-line word into letters with the same
grayscale, polarity and threshold, then gives each letter the same crop and fit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from lettercnn.errors import ImageError

# File endings read as images (compared lower-case), after torchvision's IMG_EXTENSIONS,
# limited to what OpenCV decodes.
IMG_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".pnm",
)  # fmt: skip

Threshold = Literal["otsu", "adaptive"]
THRESHOLDS: tuple[str, ...] = ("otsu", "adaptive")

# A glyph whose contrast against the background is below this (on a 0..1 scale) is
# no glyph at all: a blank page, a flat frame. The canonical image is then all black.
MIN_CONTRAST = 0.08
# Illumination flattening (:func:`glyph_bright`): the background is estimated on a copy
# whose shorter side is this many pixels (cheap, and smoother than the full image)...
BACKGROUND_SIDE = 64
# ...by a grey closing (opening for light ink) whose element is BACKGROUND_STROKES
# times the stroke width, within these fractions of that side: wider than the strokes
# (a bold letter filling a tight crop has strokes ~20 % of its side), narrower than
# the light's own changes...
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
# A glyph whose ink clears the background by fewer than this many of the background's
# robust standard deviations is the page's own noise (see :func:`stands_out`).
NOISE_SIGMAS = 4.5
# ...and by at least this share of the light: a pen or pencil takes far more (ink on
# paper 0.4-0.95); what a smooth lamp fall-off leaves after flattening takes less.
MIN_GLYPH_CONTRAST = 0.15
# Connected components smaller than this fraction of the largest one are specks.
SPECK_FRACTION = 0.04
# Choosing the letter (:func:`_keep_glyph_components`). A component's weight falls off
# with its centre's distance from the frame's centre, on this scale (a fraction of the
# frame): the letter a camera is pointed at is near the middle, cut-off neighbours are not.
CENTRE_SIGMA = 0.35
# Parts of the letter lie at most this far (a fraction of its size) from it: a broken
# stroke, a K's arm written apart. A neighbouring letter of a word is farther.
PART_GAP_FRACTION = 0.08
# A flat part (no taller than this share of its width) is an underline, a dash or a
# stub of a rule: it joins no letter, and counts this much less when the letter is chosen.
UNDERLINE_MAX_HEIGHT = 0.12
UNDERLINE_WEIGHT = 0.2
# The dot of an i or j (or an accent): smaller than this share of the letter's ink...
DOT_AREA_FRACTION = 0.35
# ...and over the letter, at most this far above it (a fraction of its size).
DOT_GAP_FRACTION = 0.5
# A hollow box drawn around the letter: at most this share of its bounding box inked...
BOX_MAX_FILL = 0.35
# ...this share of its ink in a band along its bounding box...
BOX_EDGE_SHARE = 0.85
# ...as wide as this fraction of the box's shorter side, and each side's band inked
# along this share of its length (straight sides with corners, unlike an O).
BOX_BAND_FRACTION = 0.15
BOX_SIDE_COVER = 0.9
# Ruled lines (:func:`_erase_rules`) are looked for on a copy of the mask this big...
RULE_ANALYSIS_SIDE = 128
# ...as bands of rows inked over at least this share of the frame's width...
RULE_MIN_SPAN = 0.6
# ...and within this share of both its ends (a rule crosses the frame; a box side does not)...
RULE_END_FRACTION = 0.1
# ...leaning at most this much (rise over run: a page turned ~7 degrees)...
RULE_MAX_SLOPE = 0.12
# ...no thicker than this fraction of the frame (measured within RULE_SEARCH_FRACTION
# of the line)...
RULE_MAX_THICKNESS_FRACTION = 0.05
RULE_SEARCH_FRACTION = 0.04
# ...erased this many pixels beyond their thickness (the anti-aliased edge)...
RULE_PAD_PX = 1.0
# ...and only where it runs past the rest of the ink at both ends by this share of the
# frame, and the rest is no taller than RULE_MAX_LETTER_SPAN of its length: a ruled
# line runs on past the letter written on it; a letter's own stroke (a T's bar, an
# L's foot, a b's stem) ends at the letter, or is as long as the letter is tall.
RULE_OVERHANG = 0.1
RULE_MAX_LETTER_SPAN = 0.8
# Rows of the band a line is looked for in: a line leaning RULE_MAX_SLOPE crosses
# about this many over RULE_MIN_SPAN of a RULE_ANALYSIS_SIDE frame.
RULE_SCREEN_ROWS = 9
# Components that touch the image border and run along more than this fraction of
# its width or height are taken for a frame edge, a table or a shadow, not for the
# glyph. High, so the stem of a tightly cropped "i" or "j" is still a glyph.
FRAME_FRACTION = 0.9
# Block size of the adaptive threshold, as a fraction of the shorter image side.
ADAPTIVE_BLOCK_FRACTION = 0.25
# Images larger than this (longest side, pixels) are shrunk before the analysis:
# glyph finding needs no more and a 10000x10000 photo must not take seconds.
MAX_WORK_SIDE = 512
# Images smaller than this (shorter side) are enlarged first so thresholds and
# morphology have something to work on.
MIN_WORK_SIDE = 24
# Below this range of gray levels (on a 0..1 scale) an image is flat: there is no
# polarity to tell, and stretching such a range to 0..255 would overflow float32.
MIN_POLARITY_RANGE = 1e-6

# Word mode (:func:`split_word`).
# A word is wide, so it is analysed at up to this longest side: an 8-letter word
# still has ~190 px a letter, more than a single letter needs at MAX_WORK_SIDE.
WORD_MAX_WORK_SIDE = 3 * MAX_WORK_SIDE
# Components with at least this fraction of the largest one's area vote for the
# letter height (their median), so noise and i-dots do not. Low, because the thin
# stem of an "i" has a tenth of the ink of a bold "W".
LETTER_VOTE_FRACTION = 0.05
# A part whose longer side is below this fraction of the median letter height is a
# speck (unless it is the dot of an i or j). Measured against the median letter,
# not the largest, so an "i" beside a "W" is a letter, and a blot is no yardstick.
WORD_SPECK_FRACTION = 0.3
# A part with less ink than this fraction of the median letter's is a speck too: a
# chain of noise pixels can be long but has little area. The thin stem of an "i"
# has about half the median letter's ink.
WORD_SPECK_AREA_FRACTION = 0.1
# Parts with less ink than this fraction of the median letter's are noise, dropped
# before anything else: not even a dot (a dot has 0.025 or more), and a noisy photo
# may have thousands of them, which the pairwise dot search below must not see.
WORD_NOISE_AREA_FRACTION = 0.01
# The dot of an i or j is shorter than this fraction of the letter height...
DOT_MAX_HEIGHT_FRACTION = 0.45
# ...has at least this fraction of its stem's area (OpenCV's fonts: 0.13..0.3; a
# pen tap ~0.1; a noise speck over an "H" far less)...
DOT_MIN_AREA_FRACTION = 0.05
# ...and sits at most this far (a fraction of the letter height) above its stem.
# OpenCV's fonts leave 0.1..0.2, handwriting more; a line above is a letter away.
DOT_MAX_GAP_FRACTION = 0.6
# Horizontal slack (a fraction of the letter height) when asking whether a dot is
# over its stem: on slanted and script letters the dot drifts right of the stem.
DOT_SLACK_FRACTION = 0.1
# Parts whose horizontal spans overlap by more than this fraction of the narrower
# one are one letter (a broken stroke). Neighbouring letters of an upright word
# overlap little or not at all; an i and its dot overlap fully.
MERGE_OVERLAP_FRACTION = 0.5
# ...if the gap between them is at most this fraction of the median letter height:
# a broken stroke leaves a crack, noise far above a letter is no part of it.
MERGE_MAX_GAP_FRACTION = 0.25
# ...and if together they are at most this many median letter widths wide: a "W"
# among narrow letters is ~1.6, an underline under a word many more.
MERGE_MAX_WIDTH_RATIO = 2.0
# A letter lies on the word's line: its rows overlap the median letter's rows by at
# least this fraction of the shorter of the two. Noise above or below the word, an
# underline, do not; descenders and capitals do, fully.
LINE_OVERLAP_FRACTION = 0.5
# A border-touching part as tall as the image is a vertical frame edge (a page edge,
# a shadow) only if it is this much taller than the median letter: in a tightly
# cropped word the tallest letters span the image's height too.
FRAME_LETTER_RATIO = 1.6
# Background pixels kept around a letter when it is cut out of the word: the 3x3
# dilation that keeps the anti-aliased stroke edge needs one.
LETTER_PAD = 2


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


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as it is stored (any depth, any channels).

    Args:
        path: an image file OpenCV can decode (PNG, JPEG, BMP, TIFF, WebP, PNM ...).

    Returns:
        The decoded array (H, W) or (H, W, C), dtype as stored.

    Raises:
        ImageError: the file is missing, empty, or not a decodable image.
    """
    file = Path(path)
    try:
        data = np.fromfile(file, dtype=np.uint8)
    except OSError as err:  # missing file, a folder, no permission
        raise ImageError(f"cannot read {file}: {err.strerror or err}") from None
    if data.size == 0:
        raise ImageError(f"cannot read {file}: the file is empty")
    with quiet_opencv():  # a truncated PNG makes libpng warn on stderr; our error says it
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageError(f"cannot read {file}: not an image OpenCV can decode (or truncated)")
    return image


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines (decoder and capture warnings) for a block.

    Our errors say what went wrong in one line; OpenCV's warnings on stderr would
    add lines a user or a log parser cannot act on.
    """
    from cv2.utils import logging as cv_logging

    level = cv_logging.getLogLevel()
    cv_logging.setLogLevel(cv_logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv_logging.setLogLevel(level)


def encode_png(image: np.ndarray) -> bytes:
    """Encode an image array (uint8 gray or BGR) as PNG bytes.

    Raises:
        ValueError: OpenCV could not encode the array.
    """
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"cannot encode an array of shape {image.shape} and dtype {image.dtype} as PNG")
    return data.tobytes()


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any image array to a float32 gray image in [0, 1].

    Alpha is honoured: where a BGRA image is transparent, the background is filled
    with the colour that contrasts with its opaque ink, so a glyph drawn on a
    transparent layer stays visible whatever its colour.

    Raises:
        ImageError: a shape or dtype that is not an image.
    """
    array = _image_array(image)
    if array.ndim == 3 and array.shape[2] == 3 and array.dtype in (np.uint8, np.uint16):
        # What files and cameras give: OpenCV's weighted sum on the integers is ~10x
        # faster than in float, and differs by less than a rounding step.
        return _to_unit(cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_BGR2GRAY))
    scaled = _to_unit(array)
    if scaled.ndim == 2:
        return scaled
    color = scaled[:, :, :3]
    gray = 0.114 * color[:, :, 0] + 0.587 * color[:, :, 1] + 0.299 * color[:, :, 2]  # BGR
    if scaled.shape[2] == 4:
        gray = _composite_alpha(gray, scaled[:, :, 3])
    return gray.astype(np.float32)


def _image_array(image: np.ndarray) -> np.ndarray:
    """The array as (H, W), (H, W, 3) or (H, W, 4) with pixels; (H, W, 1) is squeezed.

    Raises:
        ImageError: any other shape.
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"image has no pixels (shape {array.shape})")
    return array


def _work_gray(image: np.ndarray, max_side: int) -> np.ndarray:
    """:func:`to_gray` at the analysis size (see :func:`_work_size`).

    A huge 8- or 16-bit image (what files decode to) is shrunk *before* the float
    conversion: a 10000x10000 scan would otherwise take 400 MB of float32 per channel
    and a second of arithmetic, all thrown away by the shrink. INTER_AREA on the
    integers averages the same pixels as on the floats, to within a rounding step.
    """
    array = _image_array(image)
    height, width = array.shape[:2]
    if max(height, width) > max_side and array.dtype in (np.uint8, np.uint16):
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        array = cv2.resize(np.ascontiguousarray(array), size, interpolation=cv2.INTER_AREA)
    return _work_size(to_gray(array), max_side)


def _to_unit(array: np.ndarray) -> np.ndarray:
    """Scale any numeric dtype to float32 in [0, 1]; non-finite values become 0."""
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        # By the dtype's range: 8-bit /255, 16-bit /65535. Contrast is stretched later,
        # so 12-bit data in a 16-bit file works too.
        out = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
        return np.clip(out, 0.0, 1.0)
    if np.issubdtype(array.dtype, np.floating):
        out = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(out.max(initial=0.0))
        # Floats are taken as [0, 1] unless they are plainly on a 0..255 scale.
        if top > 1.0:
            out = out / (255.0 if top <= 255.0 else top)
        return np.clip(out, 0.0, 1.0).astype(np.float32)
    raise ImageError(f"unsupported image dtype {array.dtype}; expected integers, floats or bool")


def _composite_alpha(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Put a translucent gray layer over the background that contrasts with its ink."""
    if float(alpha.min()) >= 0.999:
        return gray
    opaque = alpha > 0.5
    ink = float(gray[opaque].mean()) if opaque.any() else 0.0
    background = 1.0 if ink < 0.5 else 0.0
    return gray * alpha + background * (1.0 - alpha)


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
    levels = _levels(small)
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
    levels = _levels(small if not dark else 1.0 - small)  # ink bright
    shorter = min(small.shape)
    spread = _quantile(levels, 0.99) - _quantile(levels, 0.01)
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


def _work_size(gray: np.ndarray, max_side: int = MAX_WORK_SIDE) -> np.ndarray:
    """Shrink huge images and enlarge tiny ones to a workable analysis size."""
    height, width = gray.shape
    longest, shortest = max(height, width), min(height, width)
    if longest > max_side:
        scale = max_side / longest
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    if shortest < MIN_WORK_SIDE:
        scale = MIN_WORK_SIDE / shortest
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR)
    return gray


def _levels(bright: np.ndarray) -> np.ndarray:
    """The image as 256 levels: statistics by histogram are ~10x faster than
    ``np.percentile`` and a 1/255 step is far below any contrast we act on."""
    return (bright * 255.0 + 0.5).astype(np.uint8)


def _quantile(levels: np.ndarray, q: float, mask: np.ndarray | None = None) -> float:
    """The ``q`` quantile (0..1) of the levels (under ``mask``), on a 0..1 scale."""
    hist = cv2.calcHist([levels], [0], mask, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist)
    if cdf[-1] <= 0:
        return 0.0
    return float(np.searchsorted(cdf, q * cdf[-1])) / 255.0


def glyph_mask(bright: np.ndarray, threshold: Threshold = "otsu") -> np.ndarray | None:
    """Binary mask of the glyph in a bright-on-dark image, or ``None`` if there is none.

    Args:
        bright: float32 gray image in [0, 1], glyph bright.
        threshold: ``"otsu"`` (one global level; clean scans, renders) or
            ``"adaptive"`` (a local mean; photos under uneven light).

    Returns:
        A bool mask of the glyph's components (specks and frame edges dropped).
    """
    mask = _threshold_mask(_levels(bright), threshold)
    return None if mask is None else _keep_glyph_components(mask)


def _threshold_mask(levels: np.ndarray, threshold: Threshold) -> np.ndarray | None:
    """All that is brighter than the background (``levels``: :func:`_levels` of the
    bright image): uint8 0/255, or ``None`` when flat."""
    if threshold not in THRESHOLDS:
        raise ValueError(f"unknown threshold {threshold!r}; expected one of {', '.join(THRESHOLDS)}")
    low, high = _quantile(levels, 0.05), _quantile(levels, 0.995)
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


def _keep_glyph_components(mask: np.ndarray) -> np.ndarray | None:
    """The glyph a person would pick in a threshold mask: a bool mask, or ``None``.

    Ruled lines that cross the frame are erased (where a stroke crosses them it
    stays); frame edges, hollow boxes drawn around the letter and specks are
    dropped. Of what is left, the largest component near the centre is the letter;
    the parts near it (the dot of an i, a broken stroke, the arm of a K written
    apart) join it, while neighbouring letters at the edges of the view do not.
    """
    mask = _erase_rules(mask)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return None
    boxes = np.column_stack(
        [stats[1:, 0], stats[1:, 1], stats[1:, 0] + stats[1:, 2], stats[1:, 1] + stats[1:, 3]]
    )  # (n, 4): x0, y0, x1, y1, ends exclusive
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    alive = _glyph_candidates(boxes, areas, labels, mask.shape)
    chosen = _letter_group(boxes, areas, alive, mask.shape)
    keep = np.zeros(count, dtype=bool)  # a lookup table by component label
    keep[chosen + 1] = True
    return keep[labels]


def _glyph_candidates(boxes: np.ndarray, areas: np.ndarray, labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Indices of the components that may be (part of) the letter."""
    height, width = shape
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    touches = (boxes[:, 0] == 0) | (boxes[:, 1] == 0) | (boxes[:, 2] >= width) | (boxes[:, 3] >= height)
    frame = touches & ((widths > FRAME_FRACTION * width) | (heights > FRAME_FRACTION * height))
    pool = ~frame if not frame.all() else np.ones(len(areas), dtype=bool)  # a tight crop touches all round
    pool &= areas >= SPECK_FRACTION * areas[pool].max()
    boxed = [i for i in np.flatnonzero(pool) if _is_hollow_box(i, boxes, areas, labels, pool)]
    if boxed and len(boxed) < pool.sum():
        pool[boxed] = False
    return np.flatnonzero(pool)


def _is_hollow_box(index: int, boxes: np.ndarray, areas: np.ndarray, labels: np.ndarray, pool: np.ndarray) -> bool:
    """A drawn frame around the letter: thin ink along its own bounding box, holding another part."""
    x0, y0, x1, y1 = boxes[index]
    width, height = x1 - x0, y1 - y0
    if areas[index] > BOX_MAX_FILL * width * height or min(width, height) < 8:
        return False
    centres_x, centres_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    inside = pool & (centres_x > x0) & (centres_x < x1) & (centres_y > y0) & (centres_y < y1)
    inside[index] = False
    if not inside.any():
        return False
    band = max(2, int(BOX_BAND_FRACTION * min(width, height)))
    own = labels[y0:y1, x0:x1] == index + 1
    core = own[band:-band, band:-band].sum() if min(width, height) > 2 * band else 0
    if float(core) > (1.0 - BOX_EDGE_SHARE) * float(areas[index]):
        return False
    # Straight sides: each side's band is inked along most of its length (an O or a
    # D, hollow too, leaves its corners empty).
    sides = (own[:band].any(axis=0), own[-band:].any(axis=0), own[:, :band].any(axis=1), own[:, -band:].any(axis=1))
    return all(float(side.mean()) >= BOX_SIDE_COVER for side in sides)


def _letter_group(boxes: np.ndarray, areas: np.ndarray, alive: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The main glyph (big and central) and the parts close to it, as component indices."""
    height, width = shape
    centre_x, centre_y = (boxes[alive, 0] + boxes[alive, 2]) / 2, (boxes[alive, 1] + boxes[alive, 3]) / 2
    offset = np.hypot((centre_x - width / 2) / width, (centre_y - height / 2) / height)
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    flat = heights <= np.maximum(2, UNDERLINE_MAX_HEIGHT * widths)  # an underline, a dash, a rule
    weight = areas[alive] * np.exp(-((offset / CENTRE_SIGMA) ** 2)) * np.where(flat[alive], UNDERLINE_WEIGHT, 1.0)
    main = int(alive[np.argmax(weight)])
    group = [main]
    box = boxes[main].astype(np.float64)
    added = True
    while added:
        added = False
        size = max(box[2] - box[0], box[3] - box[1])
        for index in alive:
            if index in group or (flat[index] and not flat[main]):
                continue  # an underline (or a rule's stub) is no part of a letter
            other = boxes[index]
            gap_x = max(other[0] - box[2], box[0] - other[2], 0.0)
            gap_y = max(other[1] - box[3], box[1] - other[3], 0.0)
            overlap_x = min(other[2], box[2]) - max(other[0], box[0])
            dot = (  # a small part above, over the letter: the dot of an i or j, an accent
                areas[index] < DOT_AREA_FRACTION * areas[group].sum()
                and overlap_x > 0
                and gap_x == 0
                and gap_y <= DOT_GAP_FRACTION * size
            )
            if max(gap_x, gap_y) <= PART_GAP_FRACTION * size or dot:
                group.append(int(index))
                box = np.array(
                    [min(box[0], other[0]), min(box[1], other[1]), max(box[2], other[2]), max(box[3], other[3])],
                    dtype=np.float64,
                )
                added = True
    return np.array(group, dtype=np.int64)


def _erase_rules(mask: np.ndarray) -> np.ndarray:
    """Erase ruled lines (thin, straight, across the frame) from a uint8 0/255 mask.

    Lines are found on a small copy of the mask as bands inked from one side of the
    frame to the other, both ways (ruled and squared paper), and fitted, so a faint
    line broken by the threshold is still one line. Where a stroke crosses a line
    (ink just before and after it), the line's pixels stay and the stroke is not cut;
    where a letter only sits on the line, its foot loses the line's few pixels. A
    line is erased only if it runs on past the rest of the ink at both ends, which a
    letter's own bar (a T in a tight crop, an L's foot) never does.
    """
    ink = mask > 0
    across = _line_candidates(ink)  # left to right
    down = [line.T for line in _line_candidates(np.ascontiguousarray(ink.T))]  # top to bottom
    if not across and not down:
        return mask
    rest = ink & ~np.logical_or.reduce(across + down)
    erase = [line for line in across if _is_rule(line, rest)]
    erase += [line for line in down if _is_rule(line.T, rest.T)]
    if not erase:
        return mask
    out = mask.copy()
    out[np.logical_or.reduce(erase)] = 0
    return out


def _line_candidates(ink: np.ndarray) -> list[np.ndarray]:
    """The pixels of each left-to-right line across a bool mask (see :func:`_erase_rules`)."""
    height, width = ink.shape
    scale = min(1.0, RULE_ANALYSIS_SIDE / max(height, width))
    small = ink.astype(np.uint8) * 255
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = (cv2.resize(small, size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8) * 255
    ys = np.arange(height, dtype=np.float32)[:, None]
    candidates = []
    for slope, intercept in _rule_fits(small):
        rows = ((slope * np.arange(width) * scale + intercept) / scale).astype(np.float32)  # its row per column
        line = _line_pixels(ink, rows, ys)
        if line is not None:
            candidates.append(line)
    return candidates


def _rule_fits(small: np.ndarray) -> list[tuple[float, float]]:
    """``(slope, intercept)`` of each ruled-line candidate in a small uint8 mask.

    A candidate is a band of rows (RULE_SCREEN_ROWS tall, which a line leaning up to
    RULE_MAX_SLOPE stays within over the span) inked over RULE_MIN_SPAN of the width
    and at both ends: a rule crosses the whole frame, a box's side or a letter's bar
    does not. The band's ink is fitted with a line (Huber: the letter's strokes in
    the band do not pull it).
    """
    height, width = small.shape
    band = cv2.dilate(small, np.ones((RULE_SCREEN_ROWS, 1), np.uint8)) > 0
    end = max(1, int(RULE_END_FRACTION * width))
    found = (band.sum(axis=1) >= RULE_MIN_SPAN * width) & band[:, :end].any(axis=1) & band[:, -end:].any(axis=1)
    fits: list[tuple[float, float]] = []
    rows = np.flatnonzero(found)
    if rows.size == 0:
        return fits
    runs = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    for run in runs:
        top, bottom = max(0, run[0] - RULE_SCREEN_ROWS // 2), min(height, run[-1] + RULE_SCREEN_ROWS // 2 + 1)
        ys, xs = np.nonzero(small[top:bottom])
        if xs.size < RULE_MIN_SPAN * width or np.ptp(xs) < RULE_MIN_SPAN * width:
            continue
        vx, vy, x0, y0 = cv2.fitLine(
            np.column_stack([xs, ys + top]).astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01
        ).ravel()
        if abs(vx) < 1e-6 or abs(vy / vx) > RULE_MAX_SLOPE:
            continue
        slope = float(vy / vx)
        fits.append((slope, float(y0 - slope * x0)))
    return fits


def _line_pixels(ink: np.ndarray, rows: np.ndarray, ys: np.ndarray) -> np.ndarray | None:
    """The ink of a thin line through ``rows`` (one row per column), where no stroke crosses it."""
    height = ink.shape[0]
    distance = np.abs(ys - rows[None, :])
    counts = (ink & (distance <= RULE_SEARCH_FRACTION * height + 1)).sum(axis=0)
    if not counts.any():
        return None
    thickness = float(np.median(counts[counts > 0]))
    if thickness > RULE_MAX_THICKNESS_FRACTION * height + 1:
        return None  # a thick band: a stroke, a shadow edge, not a ruled line
    reach = thickness / 2 + RULE_PAD_PX
    columns = np.arange(ink.shape[1])
    above = np.clip(np.round(rows - reach - 1).astype(np.int64), 0, height - 1)
    below = np.clip(np.round(rows + reach + 1).astype(np.int64), 0, height - 1)
    crossing = ink[above, columns] & ink[below, columns]
    return ink & (distance <= reach) & ~crossing[None, :]


def _is_rule(line: np.ndarray, rest: np.ndarray) -> bool:
    """Whether a line's ink is a ruled line rather than a stroke of the letter (``rest``: the ink of no line)."""
    width = line.shape[1]
    line_columns = np.flatnonzero(line.any(axis=0))
    rest_rows, rest_columns = np.flatnonzero(rest.any(axis=1)), np.flatnonzero(rest.any(axis=0))
    if line_columns.size == 0 or rest_rows.size == 0:
        return False  # nothing but lines: they are the glyph (an I, an l)
    overhang = RULE_OVERHANG * width
    return bool(
        rest_columns[0] - line_columns[0] >= overhang
        and line_columns[-1] - rest_columns[-1] >= overhang
        and rest_rows[-1] - rest_rows[0] <= RULE_MAX_LETTER_SPAN * (line_columns[-1] - line_columns[0])
    )


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
        uint8 array (spec.size, spec.size). An image with no glyph (blank, flat)
        gives an all-black array.

    Raises:
        ImageError: unreadable file or an array that is not an image.
    """
    array = load_image(image) if isinstance(image, (str, os.PathLike)) else image
    bright = glyph_bright(_work_gray(array, MAX_WORK_SIDE))
    levels = _levels(bright)
    mask = _threshold_mask(levels, threshold)
    mask = None if mask is None else _keep_glyph_components(mask)
    if mask is None or not stands_out(levels, mask):
        return np.zeros((spec.size, spec.size), dtype=np.uint8)
    return _glyph_image(bright, levels, mask, spec)


def stands_out(levels: np.ndarray, mask: np.ndarray) -> bool:
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
    """
    inked = mask.astype(np.uint8)
    levels = cv2.blur(levels, (3, 3))  # noise is measured where a stroke is: a few pixels wide
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    reach = max(rows[-1] - rows[0], cols[-1] - cols[0]) // 2 + 2  # the page around the glyph, not the whole frame
    top, bottom = max(0, rows[0] - reach), rows[-1] + reach + 1
    left, right = max(0, cols[0] - reach), cols[-1] + reach + 1
    around = 1 - cv2.dilate(inked[top:bottom, left:right], np.ones((3, 3), np.uint8))
    background = cv2.calcHist([levels[top:bottom, left:right]], [0], around, [256], [0, 256]).ravel()
    if background.sum() <= 0:
        return True  # nothing but glyph: a tight crop
    cdf = np.cumsum(background)
    median = int(np.searchsorted(cdf, 0.5 * cdf[-1]))
    spread = np.zeros(256)
    np.add.at(spread, np.abs(np.arange(256) - median), background)
    mad = float(np.searchsorted(np.cumsum(spread), 0.5 * cdf[-1]))
    ink = _quantile(levels, 0.9, inked) * 255.0
    return ink - median >= max(MIN_GLYPH_CONTRAST * 255.0, NOISE_SIGMAS * 1.4826 * max(mad, 0.5))


def _glyph_image(bright: np.ndarray, levels: np.ndarray, mask: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Crop the glyph under ``mask`` (non-empty, bool) from ``bright`` (``levels``: its
    :func:`_levels`, already computed for the threshold); fit it as uint8."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # Keep the anti-aliased edge of the strokes (a dilated mask), zero the rest,
    # and stretch the ink to full white so faint pencil and bold marker look alike.
    mask_u8 = mask.astype(np.uint8)
    keep = cv2.dilate(mask_u8, np.ones((3, 3), np.uint8)).astype(bool)
    background = _quantile(levels, 0.5, 1 - mask_u8)
    ink = _quantile(levels, 0.9, mask_u8)
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


@dataclass(frozen=True)
class LetterCrop:
    """One letter cut out of a word by :func:`split_word`.

    Attributes:
        glyph: the letter's canonical glyph, uint8 (size, size), white on black,
            cropped, centred and fitted with the margin exactly as :func:`canonical`.
        box: ``(x, y, w, h)`` of the letter in the original image's pixels.
    """

    glyph: np.ndarray
    box: tuple[int, int, int, int]


def split_word(
    image: np.ndarray | str | os.PathLike[str],
    *,
    threshold: Threshold = "otsu",
    spec: InputSpec = DEFAULT_SPEC,
) -> list[LetterCrop]:
    """Cut a photo or scan of a word (one line) into its letters, left to right.

    The image goes through the same grayscale, polarity and threshold as
    :func:`canonical`. Its connected components are then grouped into letters:
    frame edges are dropped; the dot of an i or j (a small part just above a taller
    one, over its span) joins its stem; specks (small against the median letter,
    not the largest) are dropped; parts that overlap heavily side by side (a broken
    stroke) are joined. Letters that touch each other stay one crop.

    Args:
        image: a path, or an array (gray, BGR or BGRA; uint8, uint16, float, bool).
        threshold: how ink is told from background, see :func:`glyph_mask`;
            ``"adaptive"`` for photos under uneven light.
        spec: the input spec (size, margin) of the glyphs.

    Returns:
        One :class:`LetterCrop` a letter, ordered left to right; ``[]`` for an image
        with no ink (blank, flat).

    Raises:
        ImageError: unreadable file or an array that is not an image.
        ValueError: an unknown ``threshold``.
    """
    array = _image_array(load_image(image) if isinstance(image, (str, os.PathLike)) else image)
    bright = glyph_bright(_work_gray(array, WORD_MAX_WORK_SIDE))
    levels = _levels(bright)
    mask = _threshold_mask(levels, threshold)
    if mask is None:
        return []
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    stats = stats[1:]  # without the background: component i is label i + 1
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = left + stats[:, cv2.CC_STAT_WIDTH], top + stats[:, cv2.CC_STAT_HEIGHT]
    boxes = np.column_stack([left, top, right, bottom])  # (n, 4): x0, y0, x1, y1, ends exclusive
    groups = _letter_groups(boxes, stats[:, cv2.CC_STAT_AREA], mask.shape)
    height, width = array.shape[:2]  # boxes are given in the original image's pixels
    scale = (width / bright.shape[1], height / bright.shape[0])
    return [_cut_letter(bright, levels, labels, boxes, members, scale, (height, width), spec) for members in groups]


def _letter_groups(boxes: np.ndarray, areas: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
    """Component indices of each letter, ordered left to right by the letter's centre."""
    if len(boxes) == 0:
        return []
    alive, letter = _word_components(boxes, areas, shape)
    groups = _join_dots(boxes, areas, alive, letter.height)
    groups = [g for g in groups if not _is_speck(boxes, areas, g, letter)]
    groups = _join_overlapping(boxes, groups, letter)
    if not groups:
        return []
    line_top = float(np.median([_group_box(boxes, g)[1] for g in groups]))
    line_bottom = float(np.median([_group_box(boxes, g)[3] for g in groups]))
    groups = [g for g in groups if _on_line(_group_box(boxes, g), line_top, line_bottom)]
    return sorted(groups, key=lambda g: sum(_group_box(boxes, g)[::2]))


@dataclass(frozen=True)
class _Letter:
    """The median letter of a word: its height, width and ink, pixels."""

    height: float
    width: float
    area: float


def _group_box(boxes: np.ndarray, members: np.ndarray) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` around some components, ends exclusive."""
    return (
        int(boxes[members, 0].min()),
        int(boxes[members, 1].min()),
        int(boxes[members, 2].max()),
        int(boxes[members, 3].max()),
    )


def _word_components(boxes: np.ndarray, areas: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, _Letter]:
    """The components that are neither frame edge nor noise, and the word's median letter."""
    height, width = shape
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    touches = (boxes[:, 0] == 0) | (boxes[:, 1] == 0) | (boxes[:, 2] >= width) | (boxes[:, 3] >= height)
    tall = touches & (heights > FRAME_FRACTION * height)
    wide = touches & (widths > FRAME_FRACTION * width)  # no letter of a word is the word's width
    pool = ~(tall | wide) if not (tall | wide).all() else np.ones(len(boxes), dtype=bool)
    voters = pool & (areas >= LETTER_VOTE_FRACTION * areas[pool].max())
    letter = _Letter(
        height=float(np.median(heights[voters])),
        width=float(np.median(widths[voters])),
        area=float(np.median(areas[voters])),
    )
    frame = wide | (tall & (heights > FRAME_LETTER_RATIO * letter.height))
    if frame.all():
        frame[:] = False  # nothing but frame: a tightly cropped single letter
    return np.flatnonzero(~frame & (areas >= WORD_NOISE_AREA_FRACTION * letter.area)), letter


def _is_speck(boxes: np.ndarray, areas: np.ndarray, members: np.ndarray, letter: _Letter) -> bool:
    """Small against the median letter: by its longer side or by its ink."""
    x0, y0, x1, y1 = _group_box(boxes, members)
    return (
        max(x1 - x0, y1 - y0) < WORD_SPECK_FRACTION * letter.height
        or float(areas[members].sum()) < WORD_SPECK_AREA_FRACTION * letter.area
    )


def _on_line(box: tuple[int, int, int, int], line_top: float, line_bottom: float) -> bool:
    """Whether a letter's rows overlap the word's line (the median letter's rows)."""
    _, top, _, bottom = box
    overlap = min(bottom, line_bottom) - max(top, line_top)
    return overlap >= LINE_OVERLAP_FRACTION * min(bottom - top, line_bottom - line_top)


def _stem_below(boxes: np.ndarray, areas: np.ndarray, alive: np.ndarray, dot: int, letter_height: float) -> int | None:
    """The part an i/j dot belongs to: the nearest taller one below it, under its span."""
    x0, y0, x1, y1 = boxes[dot]
    slack = DOT_SLACK_FRACTION * letter_height
    gaps = boxes[alive, 1] - y1  # stem top minus dot bottom: >= 0 when below
    below = (
        (boxes[alive, 3] - boxes[alive, 1] > y1 - y0)
        & (gaps >= 0)
        & (gaps <= DOT_MAX_GAP_FRACTION * letter_height)
        & (boxes[alive, 0] < x1 + slack)
        & (boxes[alive, 2] > x0 - slack)
        & (areas[alive] * DOT_MIN_AREA_FRACTION <= areas[dot])
    )
    return int(alive[below][np.argmin(gaps[below])]) if below.any() else None


def _join_dots(boxes: np.ndarray, areas: np.ndarray, alive: np.ndarray, letter_height: float) -> list[np.ndarray]:
    """Group each stem with its dot (the biggest candidate: an i has one); others stand alone."""
    heights = boxes[:, 3] - boxes[:, 1]
    dot_of: dict[int, int] = {}  # stem -> its dot
    for dot in alive[heights[alive] < DOT_MAX_HEIGHT_FRACTION * letter_height]:
        stem = _stem_below(boxes, areas, alive, int(dot), letter_height)
        if stem is not None and (stem not in dot_of or areas[dot] > areas[dot_of[stem]]):
            dot_of[stem] = int(dot)
    for stem in [s for s in dot_of if s in dot_of.values()]:
        del dot_of[stem]  # a "stem" that is itself some taller part's dot keeps no dot
    dots = set(dot_of.values())
    return [np.array([i, dot_of[i]] if i in dot_of else [i]) for i in map(int, alive) if i not in dots]


def _join_overlapping(boxes: np.ndarray, groups: list[np.ndarray], letter: _Letter) -> list[np.ndarray]:
    """Join the parts of broken letters (see :func:`_are_parts`) until none are left."""
    while True:
        joined: list[np.ndarray] = []
        for group in groups:
            partner = next((k for k, other in enumerate(joined) if _are_parts(boxes, group, other, letter)), None)
            if partner is None:
                joined.append(group)
            else:
                joined[partner] = np.concatenate([joined[partner], group])
        if len(joined) == len(groups):
            return joined
        groups = joined


def _are_parts(boxes: np.ndarray, first: np.ndarray, second: np.ndarray, letter: _Letter) -> bool:
    """Two parts of one letter: one over the other, overlapping most of the narrower
    one's width, near each other, and together no wider than a letter."""
    left_a, top_a, right_a, bottom_a = _group_box(boxes, first)
    left_b, top_b, right_b, bottom_b = _group_box(boxes, second)
    overlap = min(right_a, right_b) - max(left_a, left_b)
    gap = max(top_a, top_b) - min(bottom_a, bottom_b)  # negative when the rows overlap
    return (
        overlap > MERGE_OVERLAP_FRACTION * min(right_a - left_a, right_b - left_b)
        and gap <= MERGE_MAX_GAP_FRACTION * letter.height
        and max(right_a, right_b) - min(left_a, left_b) <= MERGE_MAX_WIDTH_RATIO * letter.width
    )


def _cut_letter(
    bright: np.ndarray,
    levels: np.ndarray,
    labels: np.ndarray,
    boxes: np.ndarray,
    members: np.ndarray,
    scale: tuple[float, float],
    shape: tuple[int, int],
    spec: InputSpec,
) -> LetterCrop:
    """The canonical glyph of one letter and its box in the original image."""
    x0, y0, x1, y1 = _group_box(boxes, members)
    top, left = max(0, y0 - LETTER_PAD), max(0, x0 - LETTER_PAD)
    bottom, right = min(bright.shape[0], y1 + LETTER_PAD), min(bright.shape[1], x1 + LETTER_PAD)
    mask = np.isin(labels[top:bottom, left:right], members + 1)
    glyph = _glyph_image(bright[top:bottom, left:right], levels[top:bottom, left:right], mask, spec)
    scale_x, scale_y = scale
    box_x0, box_y0 = int(np.floor(x0 * scale_x)), int(np.floor(y0 * scale_y))
    box_x1 = min(shape[1], int(np.ceil(x1 * scale_x)))
    box_y1 = min(shape[0], int(np.ceil(y1 * scale_y)))
    return LetterCrop(glyph=glyph, box=(box_x0, box_y0, box_x1 - box_x0, box_y1 - box_y0))
