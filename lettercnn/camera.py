"""Live recognition from a camera, a video file or an image folder (OpenCV, no torch).

    source --newest frame--> ROI (centred box or the largest glyph) --preprocess-->
    Recognizer --smoothing over K frames--> answer --> window or one line per change

A live camera is read on a background thread that keeps only the newest frame: when
inference is slower than the camera, stale frames are dropped instead of queued, so
the answer follows the hand with one frame of latency. Files and folders are read
frame by frame (nothing to drop: they are not real time).
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lettercnn import native, preprocess
from lettercnn.errors import CameraError
from lettercnn.runtime import DEFAULT_TOP_K, UNKNOWN, Prediction, Recognizer, check_top_k

# The default region of interest: a centred box this fraction of the shorter side.
ROI_FRACTION = 0.5
WINDOW_NAME = "letters camera"
INSET_SCALE = 4  # the 32x32 model input drawn 128x128 in a corner
KEY_QUIT = (ord("q"), 27)  # q, Esc
# The overlay: texts on panels that keep this share of the scene's light behind them
# (dark enough for white text on white paper, the scene still visible through), BGR colours.
PANEL_OPACITY = 0.75
LABEL_PAD = 4
ANSWER_COLOUR = (60, 230, 60)
TEXT_COLOUR = (255, 255, 255)
KEY_SNAPSHOT = ord("s")
# How often the consumer of a live source checks whether the reader has ended.
LIVE_POLL_S = 0.2
# What joins the elements of a GStreamer pipeline ("libcamerasrc ! ... ! appsink").
PIPELINE_SEPARATOR = "!"


@dataclass(frozen=True)
class Roi:
    """Where the letter is looked for: a centred ``width x height`` box, ``auto``, or ``full``."""

    width: int = 0
    height: int = 0
    auto: bool = False
    full: bool = False

    @classmethod
    def parse(cls, text: str | None) -> Roi | None:
        """``"WxH"`` in pixels, ``"auto"``, ``"full"``; ``None`` for the source's default (:func:`default_roi`).

        Raises:
            ValueError: anything else.
        """
        if text is None:
            return None
        word = text.strip().lower()
        if word in ("auto", "full"):
            return cls(auto=word == "auto", full=word == "full")
        parts = word.split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
            raise ValueError(f"--roi must be WxH (e.g. 200x200), auto or full, got {text!r}")
        return cls(int(parts[0]), int(parts[1]))

    def box(self, frame: np.ndarray) -> tuple[int, int, int, int]:
        """(x, y, w, h) of the region in ``frame``."""
        height, width = frame.shape[:2]
        if self.full:
            return 0, 0, width, height
        if self.auto:
            return _largest_glyph_box(frame)
        side = int(min(height, width) * ROI_FRACTION)
        w, h = min(self.width or side, width), min(self.height or side, height)
        return (width - w) // 2, (height - h) // 2, w, h


def default_roi(source: str) -> Roi:
    """The region read when ``--roi`` is not given, by the kind of source.

    A live camera (an index, a capture pipeline) shows a scene: the letter is held up in
    a centred box, and the rest of the view is the room. A video file or an image folder
    was made of the letters: each frame is read whole, as ``letters recognize`` reads a
    file (a centred box half the frame's side cut the letters of the samples off).
    """
    if source.isdigit() or (not Path(source).exists() and "!" in source):
        return Roi()
    return Roi(full=True)


def _largest_glyph_box(frame: np.ndarray) -> tuple[int, int, int, int]:
    """A square box around the largest glyph in the frame (the whole frame if none)."""
    height, width = frame.shape[:2]
    small = cv2.resize(frame, (width // 4 or 1, height // 4 or 1), interpolation=cv2.INTER_AREA)
    mask = preprocess.glyph_mask(preprocess.glyph_bright(preprocess.to_gray(small)))
    if mask is None:
        return 0, 0, width, height
    y0, y1, x0, x1 = (4 * end for end in preprocess.bounds(mask))
    side = int(max(x1 - x0, y1 - y0) * 1.3) + 8  # some paper around the glyph
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    x, y = max(0, cx - side // 2), max(0, cy - side // 2)
    return x, y, min(side, width - x), min(side, height - y)


class Smoother:
    """The letter most of the last ``k`` answers agree on, or ``"?"`` when none has a majority.

    A letter is shown only while more than half of the window reads it: a steady letter
    with a misread frame stays, a region between letters or with no letter (answers
    scattered over letters and "?") shows "?" instead of flickering through letters.
    """

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"--smooth must be >= 1, got {k}")
        self.recent: collections.deque[str] = collections.deque(maxlen=k)

    def update(self, letter: str) -> str:
        """Add an answer; return the window's majority answer, or ``"?"`` without one."""
        self.recent.append(letter)
        best, votes = collections.Counter(self.recent).most_common(1)[0]
        return best if 2 * votes > len(self.recent) else UNKNOWN


def open_source(source: str) -> Iterator[np.ndarray]:
    """Frames from a camera index, a video file, an image folder or any VideoCapture string.

    Raises:
        CameraError: the source does not open, or gives no frame.
    """
    path = Path(source)
    if path.is_dir():
        return _folder_frames(path)
    if source.isdigit():
        return _live_frames(_capture(int(source), f"camera {source}"))
    if not path.exists() and os.sep in source and PIPELINE_SEPARATOR not in source:
        raise CameraError(f"no such video file or folder: {source}")
    if not path.exists() and PIPELINE_SEPARATOR in source and not gstreamer_available():
        raise CameraError(
            f"{source!r} is a GStreamer pipeline, and this OpenCV has no GStreamer (the pip wheels have none); "
            "use Debian's python3-opencv, or picamera2 (README, 'Raspberry Pi')"
        )
    return _file_frames(_capture(source, source))


def _capture(source: int | str, name: str) -> cv2.VideoCapture:
    """Open a VideoCapture with OpenCV's own logging silenced: a missing camera makes
    its backends print several warnings; our one-line error says it better."""
    with preprocess.quiet_opencv():
        capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        raise CameraError(f"could not open {name} (not connected, busy, or not a video OpenCV decodes)")
    return capture


def _folder_frames(folder: Path) -> Iterator[np.ndarray]:
    files = [p for p in sorted(folder.iterdir()) if p.name.lower().endswith(preprocess.IMG_EXTENSIONS)]
    if not files:
        raise CameraError(f"no images in folder {folder}")

    def frames() -> Iterator[np.ndarray]:
        for file in files:
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is not None:
                yield image

    return frames()


def _file_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    ok, first = capture.read()
    if not ok:
        capture.release()
        raise CameraError("the video opened but no frame decodes")

    def frames() -> Iterator[np.ndarray]:
        try:
            frame: np.ndarray | None = first
            while frame is not None:
                yield frame
                ok, frame = capture.read()
                frame = frame if ok else None
        finally:
            capture.release()

    return frames()


def _live_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    """Newest-frame policy: a thread reads continuously and keeps only the latest."""
    latest: dict[str, np.ndarray | None] = {"frame": None}
    ready, stop = threading.Event(), threading.Event()

    def reader() -> None:
        while not stop.is_set():
            ok, frame = capture.read()
            if not ok:
                break
            latest["frame"] = frame
            ready.set()
        ready.set()  # wake the consumer at the end of the stream

    thread = threading.Thread(target=reader, name="lettercnn-camera", daemon=True)
    thread.start()

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                # A timeout, not a bare wait: the reader may end right after the
                # consumer took the last frame, and then nobody sets the event again.
                ready.wait(timeout=LIVE_POLL_S)
                ready.clear()
                frame, latest["frame"] = latest["frame"], None
                if frame is None:
                    if not thread.is_alive():
                        return
                    continue
                yield frame
        finally:
            stop.set()
            thread.join(timeout=1.0)
            capture.release()

    return frames()


def build_setting(name: str) -> str:
    """One setting of ``cv2.getBuildInformation()``, e.g. ``"GUI"`` -> ``"NONE"``; "" if it has none."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key == name:
            return value.strip()
    return ""


def gstreamer_available() -> bool:
    """Whether this OpenCV reads GStreamer pipelines (Debian's python3-opencv does; the pip wheels do not)."""
    return build_setting("GStreamer").startswith("YES")


def gui_available() -> tuple[bool, str]:
    """Whether OpenCV can open a window here, and why not."""
    if build_setting("GUI") == "NONE":
        return False, f"this OpenCV has no GUI (opencv-python-headless; for the window: {native.SWAP_TO_GUI})"
    if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display (DISPLAY is not set)"
    return True, ""


@dataclass
class FrameResult:
    """One processed frame: the raw and smoothed answers and where the time went."""

    index: int
    prediction: Prediction
    shown: str
    box: tuple[int, int, int, int]
    glyph: np.ndarray
    ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self, fps: float) -> dict[str, Any]:
        """A JSON-ready dict: frame, the shown letter, its confidence, the top-k, FPS."""
        top_k = self.prediction.to_dict()["top_k"]
        return {"frame": self.index, "letter": self.shown, "confidence": round(self.prediction.confidence, 4),
                "top_k": top_k, "fps": round(fps, 1)}  # fmt: skip


# The live threshold for a model that carries no calibration (an older export): its raw
# softmax is overconfident, so a camera between letters needs a margin.
UNCALIBRATED_THRESHOLD = 0.5


def threshold_for(recognizer: Recognizer, options: CameraOptions) -> float:
    """The "?" threshold of a camera run: the user's, the model's own, or UNCALIBRATED_THRESHOLD."""
    if options.min_confidence is not None:
        return options.min_confidence
    return recognizer.min_confidence if recognizer.calibrated else UNCALIBRATED_THRESHOLD


@dataclass
class CameraOptions:
    """What one camera run reads and how it answers (see ``letters camera --help``)."""

    top_k: int = DEFAULT_TOP_K
    # A live answer below this is "?": a frame between letters is no letter. None: the
    # model's own threshold (its calibration), or UNCALIBRATED_THRESHOLD for a model without.
    min_confidence: float | None = None
    roi: Roi = field(default_factory=Roi)
    # A majority vote over this many frames keeps the answer from flickering (~0.2 s at 25 FPS).
    smooth: int = 5
    max_frames: int | None = None

    def __post_init__(self) -> None:
        check_top_k(self.top_k)


def on_change(callback: Callable[[FrameResult, float], None]) -> Callable[[FrameResult, float], None]:
    """An ``on_result`` for :func:`run` that passes a frame on only when the shown answer changes."""
    last = {"shown": ""}

    def changed(result: FrameResult, fps: float) -> None:
        if result.shown != last["shown"]:
            last["shown"] = result.shown
            callback(result, fps)

    return changed


def frames_with_answers(
    recognizer: Recognizer, frames: Iterator[np.ndarray], options: CameraOptions
) -> Iterator[tuple[np.ndarray, FrameResult]]:
    """Recognize the letter in each frame's ROI; yields (frame, result)."""
    smoother = Smoother(options.smooth)
    clock = time.perf_counter()
    for index, frame in enumerate(frames):
        if options.max_frames is not None and index >= options.max_frames:
            return
        got = time.perf_counter()
        x, y, w, h = options.roi.box(frame)
        glyph = recognizer.glyph(frame[y : y + h, x : x + w])
        prepared = time.perf_counter()
        prediction = recognizer.classify([glyph], options.top_k, threshold_for(recognizer, options))[0]
        done = time.perf_counter()
        ms = {
            "capture": (got - clock) * 1e3,
            "preprocess": (prepared - got) * 1e3,
            "inference": (done - prepared) * 1e3,
        }
        shown = smoother.update(prediction.letter)
        yield frame, FrameResult(index, prediction, shown, (x, y, w, h), glyph, ms)
        clock = time.perf_counter()


def draw(frame: np.ndarray, result: FrameResult, fps: float) -> np.ndarray:
    """The frame with the ROI, the answer, its confidence, the top-k, FPS and the model's view.

    Every text sits on a dark panel, so it reads on paper, a board or a screen alike.
    """
    canvas = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    x, y, w, h = result.box
    cv2.rectangle(canvas, (x, y), (x + w, y + h), ANSWER_COLOUR, 2)
    _label(canvas, result.shown, (x + 4, max(4, y - 48) if y >= 48 else y + 4), 1.4, 3, ANSWER_COLOUR)
    lines = [f"{letter} {p:.2f}" for letter, p in result.prediction.top_k] + [f"{fps:.0f} FPS"]
    for row, text in enumerate(lines):
        _label(canvas, text, (6, 6 + 26 * row), 0.6, 1, TEXT_COLOUR)
    inset = cv2.resize(result.glyph, None, fx=INSET_SCALE, fy=INSET_SCALE, interpolation=cv2.INTER_NEAREST)
    side = inset.shape[0]
    if canvas.shape[0] > side and canvas.shape[1] > side:
        canvas[-side:, -side:] = inset[:, :, None]
    return canvas


def _label(canvas: np.ndarray, text: str, corner: tuple[int, int], scale: float, thickness: int, colour) -> None:
    """Text on a dark panel whose top-left corner is ``corner``, clipped to the canvas."""
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x0, y0 = corner
    x1, y1 = (
        min(canvas.shape[1], x0 + width + 2 * LABEL_PAD),
        min(canvas.shape[0], y0 + height + baseline + 2 * LABEL_PAD),
    )
    region = canvas[y0:y1, x0:x1]
    region[:] = (region * (1 - PANEL_OPACITY)).astype(canvas.dtype)  # darken what is behind
    origin = (x0 + LABEL_PAD, y0 + LABEL_PAD + height)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def snapshot(folder: Path, frame: np.ndarray, result: FrameResult) -> Path:
    """Save the frame and the crop the model saw; returns the frame's path."""
    from lettercnn.fileio import write_bytes

    stamp = time.strftime("%Y%m%d-%H%M%S")
    frame_path = folder / f"snapshot-{stamp}-{result.index}.png"
    write_bytes(frame_path, preprocess.encode_png(frame))
    write_bytes(frame_path.with_name(frame_path.stem + "-crop.png"), preprocess.encode_png(result.glyph))
    return frame_path


def run(
    recognizer: Recognizer,
    frames: Iterator[np.ndarray],
    options: CameraOptions,
    *,
    on_result: Callable[[FrameResult, float], None],
    show: bool = False,
    record: Path | None = None,
    snapshots: Path = Path("."),
) -> int:
    """Drive the loop until the source ends, ``max_frames``, or q/Esc in the window.

    Returns:
        The number of frames processed.
    """
    writer: cv2.VideoWriter | None = None
    count, fps, last = 0, 0.0, time.perf_counter()
    try:
        for frame, result in frames_with_answers(recognizer, frames, options):
            now = time.perf_counter()
            fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if count else 1.0 / max(now - last, 1e-6)
            last, count = now, count + 1
            on_result(result, fps)
            if show or record is not None:
                canvas = draw(frame.copy(), result, fps)
                writer = writer or _writer(record, canvas)
                if writer is not None:
                    writer.write(canvas)
                if show and _window(canvas, frame, result, snapshots):
                    break
    finally:
        if writer is not None:
            writer.release()
        if show:
            cv2.destroyAllWindows()
    return count


def _writer(record: Path | None, canvas: np.ndarray) -> cv2.VideoWriter | None:
    if record is None:
        return None
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if record.suffix.lower() == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(record), fourcc, 30.0, (canvas.shape[1], canvas.shape[0]))
    if not writer.isOpened():
        raise CameraError(f"cannot record to {record} (OpenCV has no writer for that format)")
    return writer


def _window(canvas: np.ndarray, frame: np.ndarray, result: FrameResult, snapshots: Path) -> bool:
    """Show the canvas; handle keys. Returns True to quit."""
    cv2.imshow(WINDOW_NAME, canvas)
    key = cv2.waitKey(1) & 0xFF
    if key == KEY_SNAPSHOT:
        snapshot(snapshots, frame, result)
    return key in KEY_QUIT
