"""`letters camera` on generated videos and folders: no camera, no display needed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from lettercnn.camera import (
    Roi,
    Smoother,
    build_setting,
    default_roi,
    gstreamer_available,
    gui_available,
    open_source,
)
from lettercnn.cli import app

runner = CliRunner()
LETTERS_SHOWN = "RKW"
FRAMES_EACH = 20


def write_video(path: Path, letters: str = LETTERS_SHOWN, frames_each: int = FRAMES_EACH) -> Path:
    """A 640x480 MJPG video: each letter drawn dark on paper for ``frames_each`` frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    rng = np.random.default_rng(0)
    for letter in letters:
        for _ in range(frames_each):
            frame = np.full((480, 640, 3), 215, np.uint8)
            shift = rng.integers(-8, 9, size=2)  # a hand is never still
            org = (int(250 + shift[0]), int(320 + shift[1]))
            cv2.putText(frame, letter, org, cv2.FONT_HERSHEY_SIMPLEX, 6, (25, 25, 25), 18, cv2.LINE_AA)
            writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "letters.avi")


def test_headless_answers_follow_the_letters_drawn(video: Path) -> None:
    result = runner.invoke(app, ["camera", "--source", str(video), "--headless"])
    assert result.exit_code == 0, result.output
    answers = [line.split(": ")[1][0] for line in result.stdout.strip().splitlines()]
    assert answers == list(LETTERS_SHOWN)
    frames = [int(line.split(":")[0].split()[1]) for line in result.stdout.strip().splitlines()]
    assert frames[0] == 0 and all(abs(f - i * FRAMES_EACH) <= 5 for i, f in enumerate(frames))  # smoothing lag


def test_json_lines_and_max_frames(video: Path) -> None:
    result = runner.invoke(app, ["camera", "--source", str(video), "--json", "--max-frames", str(FRAMES_EACH + 10)])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [e["letter"] for e in events] == ["R", "K"]
    assert all(len(e["top_k"]) == 3 and e["fps"] > 0 for e in events)


def test_without_a_display_it_falls_back_to_headless_with_a_hint(video: Path, monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = runner.invoke(app, ["camera", "--source", str(video), "--max-frames", "3"])
    assert result.exit_code == 0, result.output
    assert "running headless" in result.stderr
    assert result.stdout.startswith("frame 0: R")


def test_record_writes_the_annotated_video(video: Path, tmp_path: Path) -> None:
    out = tmp_path / "annotated.avi"
    result = runner.invoke(
        app, ["camera", "--source", str(video), "--headless", "--max-frames", "10", "--record", str(out)]
    )
    assert result.exit_code == 0, result.output
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 10
    capture.release()


@pytest.mark.parametrize(
    "source, needle",
    [("7", "could not open camera 7"), ("MISSING/clip.mp4", "no such video file"), ("GARBAGE", "could not open"),
     ("EMPTY", "no images in folder")],
)  # fmt: skip
def test_bad_sources_give_one_error_line_and_exit_1(tmp_path: Path, source: str, needle: str) -> None:
    (tmp_path / "GARBAGE").write_bytes(b"not a video at all")
    (tmp_path / "EMPTY").mkdir()
    if source != "7":
        source = str(tmp_path / source)
    result = runner.invoke(app, ["camera", "--source", source, "--headless"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], result.stderr


def test_a_pipeline_where_opencv_has_no_gstreamer_is_one_error_line_naming_the_routes(video: Path) -> None:
    if gstreamer_available():
        pytest.skip("this OpenCV has GStreamer (Debian's); the pip wheels, the runtime's dependency, have none")
    pipeline = f"filesrc location={video} ! avidemux ! jpegdec ! videoconvert ! appsink"
    result = runner.invoke(app, ["camera", "--source", pipeline, "--headless"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: {pipeline!r} is a GStreamer pipeline, and this OpenCV has no GStreamer (the pip wheels have none); "
        "use Debian's python3-opencv, or picamera2 (README, 'Raspberry Pi')"
    ]


def test_build_settings_are_read_from_opencvs_build_information() -> None:
    assert build_setting("GUI")  # NONE (headless), QT5 (opencv-python, Debian's), ...
    assert build_setting("GStreamer").split()[0] in ("YES", "NO")
    assert build_setting("No such setting") == ""


def test_bad_roi_is_a_clear_error(video: Path) -> None:
    result = runner.invoke(app, ["camera", "--source", str(video), "--headless", "--roi", "big"])
    assert result.exit_code == 1 and "--roi must be WxH" in result.stderr


def test_smoother_keeps_the_majority_and_follows_a_lasting_change() -> None:
    smoother = Smoother(5)
    shown = [smoother.update(letter) for letter in "AAAABAKKKK"]
    assert shown == list("AAAAAAA?KK")  # at 8: A 2, K 2 -> no majority: "?", not a flicker


def test_smoother_shows_a_question_mark_where_answers_scatter() -> None:
    smoother = Smoother(5)
    shown = [smoother.update(letter) for letter in "?A?B?CD?E"]
    assert set(shown[2:]) == {"?"}  # an empty desk: letters come and go, none holds a majority


def test_default_region_is_a_centred_box_for_a_camera_and_the_whole_frame_for_files(
    video: Path, tmp_path: Path
) -> None:
    frame = np.full((480, 640, 3), 220, np.uint8)
    assert default_roi("0").box(frame) == (200, 120, 240, 240)
    assert default_roi("libcamerasrc ! videoconvert ! appsink").box(frame) == (200, 120, 240, 240)
    assert default_roi(str(video)).box(frame) == (0, 0, 640, 480)
    assert default_roi(str(tmp_path)).box(frame) == (0, 0, 640, 480)


def test_the_samples_folder_reads_as_recognize_reads_its_files() -> None:
    samples = Path(__file__).resolve().parents[1] / "samples" / "letters"
    result = runner.invoke(app, ["camera", "--source", str(samples), "--json", "--smooth", "1"])
    assert result.exit_code == 0, result.output
    answers = [json.loads(line)["letter"] for line in result.stdout.strip().splitlines()]
    expected = [path.name[0].upper() for path in sorted(samples.iterdir()) if path.suffix in (".png", ".jpg")]
    assert answers == expected  # the letters differ one to the next: one line per image


def test_overlay_text_sits_on_a_dark_panel_on_white_paper(video: Path) -> None:
    from lettercnn.camera import FrameResult, draw
    from lettercnn.runtime import Prediction

    frame = np.full((240, 320, 3), 250, np.uint8)
    result = FrameResult(0, Prediction("R", 0.9, [("R", 0.9), ("P", 0.05)]), "R", (80, 60, 160, 120),
                         np.zeros((32, 32), np.uint8))  # fmt: skip
    canvas = draw(frame.copy(), result, 30.0)
    panel = canvas[6:26, 6:60]  # behind "R 0.90", top left
    assert np.median(panel) < 100 and canvas[6:26, 6:60].max() > 200  # dark panel, bright text on it


def test_roi_centred_box_auto_box_and_full_frame() -> None:
    frame = np.full((480, 640, 3), 220, np.uint8)
    assert Roi().box(frame) == (200, 120, 240, 240)
    assert Roi.parse(None) is None  # the source's default, see default_roi
    assert Roi.parse("full").box(frame) == (0, 0, 640, 480)
    assert Roi.parse("100x50").box(frame) == (270, 215, 100, 50)
    cv2.putText(frame, "L", (40, 200), cv2.FONT_HERSHEY_SIMPLEX, 3, (0, 0, 0), 8)
    x, y, w, h = Roi.parse("auto").box(frame)
    assert x < 60 and y < 130 and x + w > 90 and y + h > 195  # around the L, not the centre


def test_image_folder_is_a_source(tmp_path: Path) -> None:
    for index, letter in enumerate("AB"):
        frame = np.full((200, 200), 230, np.uint8)
        cv2.putText(frame, letter, (50, 150), cv2.FONT_HERSHEY_SIMPLEX, 4, 20, 10)
        cv2.imwrite(str(tmp_path / f"{index}.png"), frame)
    assert len(list(open_source(str(tmp_path)))) == 2


def test_gui_check_says_why_not_without_a_display(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    ok, why = gui_available()
    assert not ok and why


def test_the_headless_wheel_falls_back_to_headless_with_a_hint_naming_the_swap(video: Path, monkeypatch) -> None:
    if "NONE" not in cv2.getBuildInformation().split("GUI:")[1].splitlines()[0]:
        pytest.skip("this OpenCV has a GUI: the runtime's own dependency is opencv-python-headless")
    monkeypatch.setenv("DISPLAY", ":0")  # a display: what is missing is the GUI itself
    result = runner.invoke(app, ["camera", "--source", str(video), "--max-frames", "3"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "No window: this OpenCV has no GUI (opencv-python-headless; for the window: pip uninstall -y opencv-python "
        "opencv-python-headless && pip install opencv-python); running headless (use --headless to silence this)."
    ]
    assert result.stdout.startswith("frame 0: R")


def test_live_reader_drops_stale_frames_when_inference_is_slow(tmp_path: Path) -> None:
    import time

    from lettercnn.camera import _capture, _live_frames

    frames = 90
    path = write_video(tmp_path / "live.avi", letters="ABC", frames_each=frames // 3)
    seen = []
    for frame in _live_frames(_capture(str(path), "test video")):
        seen.append(frame)
        time.sleep(0.02)  # a slow model: the reader decodes far faster than this
    assert 1 <= len(seen) < frames  # stale frames were dropped, not queued


def test_soak_benchmark_runs_end_to_end_on_a_short_video() -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"
    result = subprocess.run(
        [sys.executable, str(script), "--frames", "60", "--early", "20"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "frame    20: peak RSS" in result.stdout and "frame    60: peak RSS" in result.stdout
    assert "2 changes of answer" in result.stdout  # A, B, C: 25 frames each


def test_an_empty_desk_shows_a_question_mark_then_the_letter_held_up(tmp_path: Path) -> None:
    path = tmp_path / "desk.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    rng = np.random.default_rng(1)
    light = np.tile(np.linspace(0.55, 1.0, 320, dtype=np.float32), (240, 1))[:, :, None]  # a lamp on one side
    for index in range(40):
        frame = (np.full((240, 320, 3), 215, np.float32) * light + rng.normal(0, 4, (240, 320, 3))).clip(0, 255)
        frame = frame.astype(np.uint8)
        if index >= 20:
            cv2.putText(frame, "R", (120, 170), cv2.FONT_HERSHEY_SIMPLEX, 4, (25, 25, 25), 12, cv2.LINE_AA)
        writer.write(frame)
    writer.release()
    result = runner.invoke(app, ["camera", "--source", str(path), "--headless"])
    assert result.exit_code == 0, result.output
    answers = [line.split(": ")[1].split()[0] for line in result.stdout.strip().splitlines()]
    assert answers == ["?", "R"]


def test_a_video_of_photo_like_frames_is_followed_letter_by_letter(tmp_path: Path) -> None:
    """Uneven light, a soft shadow, noise and MJPG: the frames a phone or webcam gives."""
    path = tmp_path / "photo.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    rng = np.random.default_rng(2)
    xs = np.linspace(0.0, 1.0, 640, dtype=np.float32)[None, :]
    ys = np.linspace(0.0, 1.0, 480, dtype=np.float32)[:, None]
    light = 1.0 - 0.7 * np.hypot(xs - 1.1, ys + 0.2) / 1.6  # a lamp off the top right corner
    shadow = np.ones((480, 640), np.float32)
    shadow[:, :290] = 0.5  # a hand's shadow, its edge across the letter (a plain Otsu read L, L, L)
    light = (light * cv2.GaussianBlur(shadow, (0, 0), 12))[:, :, None]
    for letter in "KRW":
        for _ in range(FRAMES_EACH):
            ink = np.zeros((480, 640), np.uint8)
            shift = rng.integers(-8, 9, size=2)
            cv2.putText(ink, letter, (int(230 + shift[0]), int(330 + shift[1])), cv2.FONT_HERSHEY_DUPLEX, 6, 255, 16)
            paper = 0.85 - 0.6 * cv2.GaussianBlur(ink, (0, 0), 1.2)[:, :, None].astype(np.float32) / 255
            frame = np.clip(paper * light * 255 + rng.normal(0, 5, (480, 640, 1)), 0, 255).astype(np.uint8)
            writer.write(np.repeat(frame, 3, axis=2))
    writer.release()
    result = runner.invoke(app, ["camera", "--source", str(path), "--headless", "--roi", "240x240"])
    assert result.exit_code == 0, result.output
    answers = [line.split(": ")[1].split()[0] for line in result.stdout.strip().splitlines()]
    assert answers == list("KRW")


def test_camera_latency_benchmark_ends_with_a_line_to_paste_into_an_issue() -> None:
    import re
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "camera_latency.py"
    result = subprocess.run(
        [sys.executable, str(script), "--frames", "30"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    number = r"(\d+\.\d\d)"
    found = re.fullmatch(
        rf"To paste into an issue: device=.+ \(\w+, \d+ cores\); os=.+; python=[\d.]+; onnxruntime=[\d.]+; "
        rf"opencv={re.escape(cv2.__version__)}; threads=1; per frame: capture {number} \+ preprocess {number} \+ "
        rf"inference {number} \+ drawing {number} = {number} ms \(\d+ FPS\)",
        last,
    )
    assert found, last
    *stages, total = (float(value) for value in found.groups())
    assert abs(sum(stages) - total) <= 0.02
