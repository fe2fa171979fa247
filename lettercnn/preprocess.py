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
# Connected components smaller than this fraction of the largest one are specks.
SPECK_FRACTION = 0.04
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
    scaled = _to_unit(_image_array(image))
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
    """Flip polarity when needed so the glyph is bright on a dark background.

    The background is told by the image border (median of the outer ring of pixels):
    a letter fills the middle of its picture, paper or board surrounds it. The ring
    is compared with the Otsu level of the image's own range (the level between its
    ink and its paper), not the midpoint of its extremes, so a dark table edge or a
    vignette that drags the minimum down does not flip a page; dim or 12-bit images
    work too.
    """
    ring = np.concatenate([gray[0, :], gray[-1, :], gray[:, 0], gray[:, -1]])
    low, high = float(gray.min()), float(gray.max())
    if high - low < MIN_POLARITY_RANGE:
        return gray
    stretched = ((gray - low) * (255.0 / (high - low))).astype(np.uint8)
    otsu, _ = cv2.threshold(stretched, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    level = low + (otsu / 255.0) * (high - low)
    if float(np.median(ring)) > level:
        return (high - gray) + low
    return gray


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
    """Drop specks and frame edges; keep the glyph and its parts (the dot of an i)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return None
    height, width = mask.shape
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    x, y = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    w, h = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    touches = (x == 0) | (y == 0) | (x + w >= width) | (y + h >= height)
    frame = touches & ((w > FRAME_FRACTION * width) | (h > FRAME_FRACTION * height))
    candidates = np.where(~frame, areas, 0.0)
    if candidates.max() <= 0:
        candidates = areas  # everything touches the frame: a tightly cropped glyph
    keep = np.zeros(count, dtype=bool)  # a lookup table by component label
    keep[1:] = candidates >= SPECK_FRACTION * candidates.max()
    return keep[labels]


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
    if mask is None:
        return np.zeros((spec.size, spec.size), dtype=np.uint8)
    return _glyph_image(bright, levels, mask, spec)


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
