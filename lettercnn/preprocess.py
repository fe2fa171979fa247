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
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

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


class ImageError(ValueError):
    """An image that cannot be read or understood."""


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
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageError(f"cannot read {file}: not an image OpenCV can decode (or truncated)")
    return image


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any image array to a float32 gray image in [0, 1].

    Alpha is honoured: where a BGRA image is transparent, the background is filled
    with the colour that contrasts with its opaque ink, so a glyph drawn on a
    transparent layer stays visible whatever its colour.

    Raises:
        ImageError: a shape or dtype that is not an image.
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"image has no pixels (shape {array.shape})")
    scaled = _to_unit(array)
    if scaled.ndim == 2:
        return scaled
    color = scaled[:, :, :3]
    gray = 0.114 * color[:, :, 0] + 0.587 * color[:, :, 1] + 0.299 * color[:, :, 2]  # BGR
    if scaled.shape[2] == 4:
        gray = _composite_alpha(gray, scaled[:, :, 3])
    return gray.astype(np.float32)


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
    is compared with the image's own range, so dim or 12-bit images work too.
    """
    ring = np.concatenate([gray[0, :], gray[-1, :], gray[:, 0], gray[:, -1]])
    low, high = float(gray.min()), float(gray.max())
    if float(np.median(ring)) > (low + high) / 2:
        return (high - gray) + low
    return gray


def _work_size(gray: np.ndarray) -> np.ndarray:
    """Shrink huge images and enlarge tiny ones to a workable analysis size."""
    height, width = gray.shape
    longest, shortest = max(height, width), min(height, width)
    if longest > MAX_WORK_SIDE:
        scale = MAX_WORK_SIDE / longest
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
    if threshold not in THRESHOLDS:
        raise ValueError(f"unknown threshold {threshold!r}; expected one of {', '.join(THRESHOLDS)}")
    levels = _levels(bright)
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
    return _keep_glyph_components(mask)


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
    bright = glyph_bright(_work_size(to_gray(array)))
    mask = glyph_mask(bright, threshold)
    if mask is None:
        return np.zeros((spec.size, spec.size), dtype=np.uint8)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # Keep the anti-aliased edge of the strokes (a dilated mask), zero the rest,
    # and stretch the ink to full white so faint pencil and bold marker look alike.
    mask_u8 = mask.astype(np.uint8)
    keep = cv2.dilate(mask_u8, np.ones((3, 3), np.uint8)).astype(bool)
    levels = _levels(bright)
    background = _quantile(levels, 0.5, 1 - mask_u8)
    ink = _quantile(levels, 0.9, mask_u8)
    glyph = np.clip((bright - background) / max(ink - background, 1e-6), 0.0, 1.0) * keep
    fitted = _fit(glyph[top:bottom, left:right], spec)
    return np.round(np.clip(fitted, 0.0, 1.0) * 255.0).astype(np.uint8)


def normalize(glyph: np.ndarray, spec: InputSpec = DEFAULT_SPEC) -> np.ndarray:
    """Canonical uint8 glyph (size, size) -> float32 (1, size, size) model input."""
    return ((glyph.astype(np.float32) / 255.0 - spec.mean) / spec.std)[None, :, :]


def to_input(
    image: np.ndarray | str | os.PathLike[str],
    *,
    spec: InputSpec = DEFAULT_SPEC,
    threshold: Threshold = "otsu",
) -> np.ndarray:
    """Any image to the model's input, float32 (1, size, size); see :func:`canonical`."""
    return normalize(canonical(image, spec=spec, threshold=threshold), spec)
