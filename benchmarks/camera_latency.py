"""Per-frame time of the camera loop on a 640x480 video, split by stage.

Stages: capture/decode (VideoCapture.read of an MJPG file), preprocess (ROI crop and
canonical), inference (onnxruntime, batch 1), drawing (ROI, text, inset). Run:

    python benchmarks/camera_latency.py [--frames 300] [--threads 1]

The last line says the device, OS, Python, onnxruntime, OpenCV and the split on one
line, to paste into an issue (on a Raspberry Pi: ``--threads 4``).

Target (issue 4): total <= 5 ms per frame with 1 thread on the 2-core dev machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from lettercnn import camera
from lettercnn.runtime import Recognizer

# Where Linux names the board (a Raspberry Pi: "Raspberry Pi 4 Model B Rev 1.4"), the CPU and the OS.
BOARD_MODEL = Path("/proc/device-tree/model")
CPU_INFO = Path("/proc/cpuinfo")
OS_RELEASE = Path("/etc/os-release")


def make_video(path: Path, frames: int) -> Path:
    """Letters drawn on paper, changing every 30 frames, with some noise."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    rng = np.random.default_rng(0)
    for index in range(frames):
        frame = np.full((480, 640, 3), 210, np.uint8)
        frame += rng.integers(0, 12, frame.shape, dtype=np.uint8)
        letter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(index // 30) % 26]
        cv2.putText(frame, letter, (250, 320), cv2.FONT_HERSHEY_SIMPLEX, 6, (30, 30, 30), 18, cv2.LINE_AA)
        writer.write(frame)
    writer.release()
    return path


def _first_value(file: Path, key: str) -> str | None:
    """The value of the first ``key: value`` or ``key=value`` line of a /proc or /etc file, if any."""
    if not file.is_file():
        return None
    for line in file.read_text(errors="replace").splitlines():
        name, _, value = line.replace("=", ":", 1).partition(":")
        if name.strip() == key:
            return value.strip().strip('"')
    return None


def device() -> str:
    """The board (a Pi names itself in the device tree), else the CPU; its architecture and cores."""
    if BOARD_MODEL.is_file():
        name = BOARD_MODEL.read_text(errors="replace").rstrip("\x00").strip()
    else:
        name = _first_value(CPU_INFO, "model name") or platform.processor() or "unknown CPU"
    return f"{name} ({platform.machine()}, {os.cpu_count()} cores)"


def report_line(stages: dict[str, float], threads: int) -> str:
    """One line for an issue: device, OS, versions and the per-frame split (medians, ms)."""
    import onnxruntime

    total = sum(stages.values())
    split = " + ".join(f"{name} {ms:.2f}" for name, ms in stages.items())
    return (
        f"device={device()}; os={_first_value(OS_RELEASE, 'PRETTY_NAME') or platform.platform()}; "
        f"python={platform.python_version()}; onnxruntime={onnxruntime.__version__}; opencv={cv2.__version__}; "
        f"threads={threads}; per frame: {split} = {total:.2f} ms ({1000 / total:.0f} FPS)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    recognizer = Recognizer(threads=args.threads)
    session = camera.CameraOptions()
    with tempfile.TemporaryDirectory() as folder:
        video = make_video(Path(folder) / "bench.avi", args.frames)
        stages: dict[str, list[float]] = {"capture": [], "preprocess": [], "inference": [], "drawing": []}
        frames = camera.open_source(str(video))
        for frame, result in camera.frames_with_answers(recognizer, frames, session):
            start = time.perf_counter()
            camera.draw(frame, result, 30.0)
            for name in ("capture", "preprocess", "inference"):
                stages[name].append(result.ms[name])
            stages["drawing"].append((time.perf_counter() - start) * 1e3)
    warm = {name: values[10:] for name, values in stages.items()}  # skip the warm-up frames
    print(f"{len(stages['capture'])} frames of 640x480, onnxruntime threads={args.threads}")
    medians = {name: statistics.median(values) for name, values in warm.items()}
    for name, values in warm.items():
        print(f"  {name:10s} median {medians[name]:6.2f} ms   p90 {np.percentile(values, 90):6.2f} ms")
    total = sum(medians.values())
    print(f"  {'total':10s} median {total:6.2f} ms per frame ({1000 / total:.0f} FPS)")
    print(f"To paste into an issue: {report_line(medians, args.threads)}")


if __name__ == "__main__":
    main()
