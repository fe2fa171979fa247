"""Soak test of the camera loop: does memory stay flat over thousands of frames?

Writes a 320x240 MJPG video of letters (a new letter every 25 frames, shifted and
noisy like a hand-held sheet), then runs it through the headless camera loop
(``lettercnn.camera.run``, the loop behind ``letters camera --headless``) and samples
the process's memory at an early frame and at the last one:

- peak RSS (``resource.getrusage``'s ``ru_maxrss``), the figure the target is on;
- current RSS (``/proc/self/statm``, Linux), which shows a leak even under an old peak.

Run:

    python benchmarks/soak.py [--frames 5000] [--early 500] [--threads 1]

Target (issue 7): peak RSS at frame 500 and at frame 5,000 differ by at most 10%.
Exits 1 when they differ by more.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from lettercnn import camera
from lettercnn.labels import LETTERS
from lettercnn.runtime import Recognizer

FRAME_SIZE = (320, 240)  # width, height: a small camera mode, as on a Pi
FPS = 30.0
FRAMES_PER_LETTER = 25
MAX_GROWTH = 0.10  # the bound on peak RSS growth from the early frame to the last
MB = 2**20


def make_video(path: Path, frames: int) -> Path:
    """Letters on noisy paper, each for FRAMES_PER_LETTER frames, jittering a few pixels."""
    width, height = FRAME_SIZE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (width, height))
    rng = np.random.default_rng(0)
    for index in range(frames):
        frame = np.full((height, width, 3), 205, np.uint8)
        frame += rng.integers(0, 20, frame.shape, dtype=np.uint8)
        letter = LETTERS[(index // FRAMES_PER_LETTER) % len(LETTERS)]
        x, y = (int(v) for v in rng.integers(-6, 7, size=2))
        cv2.putText(frame, letter, (125 + x, 155 + y), cv2.FONT_HERSHEY_SIMPLEX, 2.6, (30, 30, 30), 7, cv2.LINE_AA)
        writer.write(frame)
    writer.release()
    return path


def peak_rss() -> int:
    """The process's peak resident set so far, bytes (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss() -> int | None:
    """The process's resident set now, bytes; None where /proc is missing."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def megabytes(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5000, help="frames in the video (the last sample)")
    parser.add_argument("--early", type=int, default=500, help="frame of the first sample")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    args = parser.parse_args()
    if not 0 < args.early < args.frames:
        parser.error(f"need 0 < --early < --frames, got {args.early} and {args.frames}")

    samples: dict[int, tuple[int, int | None]] = {}
    answers: list[str] = []

    def on_result(result: camera.FrameResult, _fps: float) -> None:
        answers.append(result.shown)
        done = result.index + 1
        if done in (args.early, args.frames):
            samples[done] = (peak_rss(), current_rss())

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        video = make_video(Path(folder) / "soak.avi", args.frames)
        seconds = time.perf_counter() - started
        print(f"wrote {args.frames} frames of {FRAME_SIZE[0]}x{FRAME_SIZE[1]} MJPG in {seconds:.1f} s")
        print(f"before the loop: peak RSS {megabytes(peak_rss())}, current {megabytes(current_rss())}")
        recognizer = Recognizer(threads=args.threads)
        started = time.perf_counter()
        count = camera.run(recognizer, camera.open_source(str(video)), camera.CameraOptions(), on_result=on_result)
        seconds = time.perf_counter() - started

    changes = sum(1 for before, after in zip(answers, answers[1:]) if before != after)
    print(f"{count} frames in {seconds:.1f} s ({count / seconds:.0f} FPS, onnxruntime threads={args.threads}), "
          f"{changes} changes of answer")  # fmt: skip
    for frame, (peak, now) in sorted(samples.items()):
        print(f"  frame {frame:>5}: peak RSS {megabytes(peak)}, current RSS {megabytes(now)}")
    (early_peak, early_now), (last_peak, last_now) = samples[args.early], samples[args.frames]
    growth = last_peak / early_peak - 1.0
    print(f"peak RSS frame {args.frames} / frame {args.early}: {last_peak / early_peak:.3f} ({growth:+.1%})")
    if early_now and last_now:
        print(f"current RSS frame {args.frames} / frame {args.early}: {last_now / early_now:.3f}")
    if abs(growth) > MAX_GROWTH:
        print(f"FAIL: peak RSS changed by {growth:+.1%}, more than {MAX_GROWTH:.0%}")
        return 1
    print(f"OK: within {MAX_GROWTH:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
