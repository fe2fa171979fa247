"""Tests of the scripts in examples/: their core runs here, on drawn frames, without a camera."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from lettercnn import camera
from lettercnn.runtime import Recognizer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Not an I: Hershey's plain bar is as much an l, and the model rightly answers "?" for it.
LETTERS_SHOWN = "PKE"
FRAMES_EACH = 12


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (examples/ is no package)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def picamera2_letters() -> ModuleType:
    return load_example("picamera2_letters")


def drawn_frames(width: int, height: int) -> list[np.ndarray]:
    """Frames the way picamera2 hands them over (height x width x 3, uint8, BGR): each letter
    dark on paper for FRAMES_EACH frames, a little off centre each time, as a hand holds it."""
    rng = np.random.default_rng(0)
    frames = []
    for letter in LETTERS_SHOWN:
        for _ in range(FRAMES_EACH):
            frame = np.full((height, width, 3), (200, 210, 220), np.uint8)
            dx, dy = rng.integers(-8, 9, size=2)
            origin = (int(width // 2 - 60 + dx), int(height // 2 + 70 + dy))
            cv2.putText(frame, letter, origin, cv2.FONT_HERSHEY_SIMPLEX, 6, (30, 25, 20), 18, cv2.LINE_AA)
            frames.append(frame)
    return frames


def test_picamera2_example_reads_the_letters_of_any_frame_iterator(picamera2_letters: ModuleType) -> None:
    width, height = picamera2_letters.FRAME_SIZE
    changes: list[camera.FrameResult] = []
    count = picamera2_letters.read_letters(
        Recognizer(threads=1), iter(drawn_frames(width, height)), camera.CameraOptions(),
        lambda result, _fps: changes.append(result),
    )  # fmt: skip
    assert count == len(LETTERS_SHOWN) * FRAMES_EACH
    assert [result.shown for result in changes] == list(LETTERS_SHOWN)
    assert changes[0].index == 0 and all(abs(r.index - i * FRAMES_EACH) <= 5 for i, r in enumerate(changes))


def test_picamera2_example_without_picamera2_is_one_error_line_naming_the_apt_package(
    picamera2_letters: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # as on any machine without Raspberry Pi OS's package
    assert picamera2_letters.main(["--max-frames", "1", "--threads", "1"]) == 1
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("Error: picamera2 does not import here (") and "sudo apt install python3-picamera2" in line
    assert captured.out == ""
