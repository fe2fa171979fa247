"""Reading images and making them gray, at a size worth analysing (numpy and OpenCV).

Any image -- a path or an array; gray, BGR or BGRA; uint8, uint16, float or bool; any
size -- becomes a float32 gray image in [0, 1] (:func:`to_gray`, :func:`work_gray`).
Statistics of the analysis are taken on 256 levels (:func:`to_levels`, :func:`quantile`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from lettercnn.errors import ImageError

# File endings read as images (compared lower-case), after torchvision's IMG_EXTENSIONS,
# limited to what OpenCV decodes.
IMG_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".pnm",
)  # fmt: skip
# Images larger than this (longest side, pixels) are shrunk before the analysis:
# glyph finding needs no more and a 10000x10000 photo must not take seconds.
MAX_WORK_SIDE = 512
# Images smaller than this (shorter side) are enlarged first so thresholds and
# morphology have something to work on.
MIN_WORK_SIDE = 24


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
    add lines a user or a log parser cannot act on. OpenCV 5 has only
    ``cv2.utils.logging``; 4.6 (Debian bookworm's python3-opencv) has only
    ``cv2.setLogLevel``, with the same levels; an OpenCV with neither runs the
    block unsilenced.
    """
    try:
        from cv2.utils import logging as cv_logging
    except ImportError:
        get_level, set_level = getattr(cv2, "getLogLevel", None), getattr(cv2, "setLogLevel", None)
        silent = 0  # cv::utils::logging::LOG_LEVEL_SILENT, which 4.6 does not name in Python
    else:
        get_level, set_level, silent = cv_logging.getLogLevel, cv_logging.setLogLevel, cv_logging.LOG_LEVEL_SILENT
    if get_level is None or set_level is None:
        yield
        return
    level = get_level()
    set_level(silent)
    try:
        yield
    finally:
        set_level(level)


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
    array = image_array(image)
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


def image_array(image: np.ndarray) -> np.ndarray:
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


def work_gray(image: np.ndarray, max_side: int) -> np.ndarray:
    """:func:`to_gray` at the analysis size (see :func:`_work_size`).

    A huge 8- or 16-bit image (what files decode to) is shrunk *before* the float
    conversion: a 10000x10000 scan would otherwise take 400 MB of float32 per channel
    and a second of arithmetic, all thrown away by the shrink. INTER_AREA on the
    integers averages the same pixels as on the floats, to within a rounding step.
    """
    array = image_array(image)
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


def to_levels(bright: np.ndarray) -> np.ndarray:
    """The image as 256 levels: statistics by histogram are ~10x faster than
    ``np.percentile`` and a 1/255 step is far below any contrast we act on."""
    return (bright * 255.0 + 0.5).astype(np.uint8)


def quantile(levels: np.ndarray, q: float, mask: np.ndarray | None = None) -> float:
    """The ``q`` quantile (0..1) of the levels (under ``mask``), on a 0..1 scale."""
    hist = cv2.calcHist([levels], [0], mask, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist)
    if cdf[-1] <= 0:
        return 0.0
    return float(np.searchsorted(cdf, q * cdf[-1])) / 255.0
