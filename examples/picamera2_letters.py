"""Read letters from a Raspberry Pi camera module through picamera2: no GStreamer, any OpenCV wheel.

    python examples/picamera2_letters.py                     # one line per change of answer
    python examples/picamera2_letters.py --threads 4 --int8 --max-frames 300

picamera2 is Raspberry Pi OS's camera library. It comes from apt, not pip
(``sudo apt install python3-picamera2``), so the venv that runs this script is made
with ``--system-site-packages`` (README, "Raspberry Pi"). It hands over numpy frames;
:func:`lettercnn.camera.run` takes any iterator of BGR frames and recognises them the
way ``letters camera --headless`` does (the ROI, the smoothing, the ``?`` threshold).

:func:`read_letters` is that loop for any frame iterator; ``tests/test_examples.py``
runs it on drawn frames, without a camera or picamera2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from lettercnn import camera
from lettercnn.errors import LetterError
from lettercnn.runtime import Recognizer, choose_model

# What picamera2 delivers: 640x480 (the size the camera benchmark times), as "RGB888",
# which picamera2 stores B, G, R per pixel: OpenCV's order, so no conversion.
FRAME_SIZE = (640, 480)
FRAME_FORMAT = "RGB888"
PICAMERA2_HINT = (
    "install it with: sudo apt install python3-picamera2, and run this script in a venv made with "
    "python3 -m venv --system-site-packages that keeps Debian's numpy (README, 'Raspberry Pi')"
)
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def picamera2_frames(size: tuple[int, int] = FRAME_SIZE) -> Iterator[np.ndarray]:
    """Start the first camera module; its frames as (height, width, 3) uint8 BGR arrays, until the caller stops.

    Args:
        size: (width, height) of the frames.

    Raises:
        ImportError: picamera2 is not installed, not visible from this venv, or does not load.
    """
    from picamera2 import Picamera2

    picam2 = Picamera2()
    picam2.configure(picam2.create_video_configuration(main={"size": size, "format": FRAME_FORMAT}))
    picam2.start()

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                yield picam2.capture_array("main")
        finally:
            picam2.stop()
            picam2.close()

    return frames()


def read_letters(
    recognizer: Recognizer,
    frames: Iterable[np.ndarray],
    options: camera.CameraOptions,
    on_change: Callable[[camera.FrameResult, float], None],
) -> int:
    """Recognise the letter in each frame; call ``on_change`` when the shown (smoothed) letter changes.

    Args:
        recognizer: the model to read with.
        frames: BGR (or gray) frames from any source.
        options: ROI, smoothing, top-k, threshold, frame limit.
        on_change: called with the frame's result and the frames per second.

    Returns:
        The number of frames read.
    """
    return camera.run(recognizer, iter(frames), options, on_result=camera.on_change(on_change))


def print_change(result: camera.FrameResult, fps: float) -> None:
    """One line per change of answer, as ``letters camera --headless`` prints it."""
    print(f"frame {result.index}: {result.shown} ({result.prediction.confidence:.2f}, {fps:.0f} FPS)", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Read letters from the camera module until Ctrl-C or ``--max-frames``; returns the exit status."""
    parser = argparse.ArgumentParser(description="Read letters from a Raspberry Pi camera module (picamera2).")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all cores)")
    parser.add_argument("--int8", action="store_true", help="use the int8 model, about 3x faster")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    args = parser.parse_args(argv)
    try:
        recognizer = Recognizer(choose_model(None, args.int8), args.threads)
        try:
            frames = picamera2_frames()
        except ImportError as error:
            print(f"Error: picamera2 does not import here ({error}); {PICAMERA2_HINT}", file=sys.stderr)
            return EXIT_ERROR
        read_letters(recognizer, frames, camera.CameraOptions(max_frames=args.max_frames), print_change)
    except LetterError as error:
        print(f"Error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
