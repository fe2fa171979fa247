"""Tests of the `letters` command line, through Typer's CliRunner and a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner, Result

from lettercnn import __version__
from lettercnn import train as training
from lettercnn.cli import app
from lettercnn.data import write_synthetic
from lettercnn.labels import LETTERS
from lettercnn.nn.model import LetterCNN, checkpoint_payload

runner = CliRunner()
TINY_TRAIN = ["--per-letter", "10", "--epochs", "1", "--batch-size", "32"]


def assert_clean_error(result: Result, code: int, *needles: str) -> None:
    """The command failed with ``code``, said why (on one `Error:` line for 1), with no traceback."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if code == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in result.output, result.output


@pytest.fixture(scope="module")
def letters_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small image tree A/..Z/, 3 images per letter."""
    out = tmp_path_factory.mktemp("data") / "letters"
    write_synthetic(out, 3, seed=1)
    return out


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of an untrained model (eval needs a valid file, not a good one)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    torch.save(checkpoint_payload(LetterCNN()), path)
    return path


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "eval", "data"):
        assert command in result.output


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "Usage" in result.output
    assert "train" in result.output


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"letters {__version__}"


def test_train_writes_run_folder_and_prints_the_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", *TINY_TRAIN, "--runs-dir", str(tmp_path), "--dropout", "0.2"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "bn-dropout0.2"
    assert (run / training.BEST_CHECKPOINT).is_file()
    assert (run / training.METRICS_FILE).is_file()
    assert "epoch 1/1" in result.output
    assert "Test set" in result.output and "accuracy" in result.output
    assert "Worst letters" in result.output
    assert f"Run folder: {run}" in result.output


def test_eval_json_prints_one_json_object(letters_dir: Path, untrained_checkpoint: Path) -> None:
    result = runner.invoke(app, ["eval", str(untrained_checkpoint), "--data", str(letters_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 0.0 <= report["accuracy"] <= 1.0
    assert report["count"] == 3 * len(LETTERS)  # a plain tree: every image is scored
    assert list(report["per_class"]) == list(LETTERS)
    assert len(report["confusion"]) == len(LETTERS)


def test_eval_prints_tables(letters_dir: Path, untrained_checkpoint: Path) -> None:
    result = runner.invoke(app, ["eval", str(untrained_checkpoint), "--data", str(letters_dir)])
    assert result.exit_code == 0, result.output
    assert "Accuracy" in result.output
    assert "Per letter" in result.output
    assert f"all {3 * len(LETTERS)} images in {letters_dir}" in result.output


def test_train_with_missing_data_folder_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "nowhere"), "--runs-dir", str(tmp_path)])
    assert_clean_error(result, 1, "nowhere")


def test_train_with_unknown_optimizer_is_a_usage_error() -> None:
    result = runner.invoke(app, ["train", "--optimizer", "rmsprop"])
    assert_clean_error(result, 2, "rmsprop")


def test_train_with_bad_value_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--dropout", "1.5", "--runs-dir", str(tmp_path)])
    assert_clean_error(result, 1, "dropout")


def test_eval_with_missing_checkpoint_fails_cleanly(letters_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", str(tmp_path / "missing.pt"), "--data", str(letters_dir)])
    assert_clean_error(result, 1, "missing.pt")


def test_eval_of_a_file_that_is_no_checkpoint_fails_cleanly(letters_dir: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pt"
    bogus.write_text("not a checkpoint")
    result = runner.invoke(app, ["eval", str(bogus), "--data", str(letters_dir)])
    assert_clean_error(result, 1, "notes.pt")


def test_resume_of_a_missing_run_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "runs" / "gone")])
    assert_clean_error(result, 1, "gone")


def test_ctrl_c_during_training_exits_130_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted_fit(*_args: object, **_kwargs: object) -> None:
        raise training.TrainingInterrupted(tmp_path / "bn-dropout0", 3, 10)

    monkeypatch.setattr(training, "fit", interrupted_fit)
    result = runner.invoke(app, ["train", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 130
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "last.pt keeps 3/10" in lines[0] and "--resume" in lines[0]


def test_data_synth_writes_an_image_tree(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    result = runner.invoke(app, ["data", "synth", str(out), "--per-letter", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == list(LETTERS)
    assert f"Wrote {2 * len(LETTERS)} images" in result.output


def test_data_synth_refuses_a_full_folder_without_overwrite(letters_dir: Path) -> None:
    result = runner.invoke(app, ["data", "synth", str(letters_dir), "--per-letter", "2"])
    assert_clean_error(result, 1, "not empty")


def test_data_emnist_with_missing_files_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "emnist", str(tmp_path), str(tmp_path / "out")])
    assert_clean_error(result, 1, "emnist")


def test_cli_import_and_help_load_no_training_libraries() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from lettercnn.cli import app\n"
        "assert CliRunner().invoke(app, ['train', '--help']).exit_code == 0\n"
        "print(','.join(m for m in ('torch', 'matplotlib', 'sklearn', 'torchvision') if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def draw_letter(path: Path, text: str, *, ink: int = 25, paper: int = 225) -> Path:
    """A clear printed letter, as a phone scan of a sheet would give."""
    import cv2
    import numpy as np

    image = np.full((200, 180), paper, np.uint8)
    cv2.putText(image, text, (30, 150), cv2.FONT_HERSHEY_SIMPLEX, 4.5, ink, 10, cv2.LINE_AA)
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture()
def letter_files(tmp_path: Path) -> Path:
    folder = tmp_path / "scans"
    (folder / "nested").mkdir(parents=True)
    draw_letter(folder / "R.png", "R")
    draw_letter(folder / "nested" / "k.png", "k", ink=230, paper=20)  # light on dark
    return folder


def test_recognize_reads_the_shipped_models_letters_in_a_folder(letter_files: Path) -> None:
    result = runner.invoke(app, ["recognize", str(letter_files)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"{letter_files / 'R.png'}: R ")
    assert lines[1].startswith(f"{letter_files / 'nested' / 'k.png'}: K ")
    assert lines[-1].startswith("Speed: ") and "2 images" in lines[-1]


def test_recognize_json_gives_one_object_per_image_with_top_k(letter_files: Path) -> None:
    result = runner.invoke(app, ["recognize", str(letter_files / "*.png"), "--json", "--top-k", "5"])
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [o["letter"] for o in objects] == ["R"]
    assert len(objects[0]["top_k"]) == 5 and objects[0]["top_k"][0]["letter"] == "R"


def test_recognize_goes_on_past_bad_files_and_exits_1(letter_files: Path, tmp_path: Path) -> None:
    (letter_files / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = runner.invoke(app, ["recognize", str(letter_files), str(tmp_path / "missing.png")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "R.png: R " in result.stdout and "k.png: K " in result.stdout
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("Error: ") for line in errors)
    assert any("broken.png" in line for line in errors) and any("missing.png" in line for line in errors)


def test_recognize_below_min_confidence_answers_question_mark(letter_files: Path) -> None:
    result = runner.invoke(app, ["recognize", str(letter_files / "R.png"), "--min-confidence", "1.0", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["letter"] == "?"


def test_recognize_saves_the_crops_the_model_saw(letter_files: Path, tmp_path: Path) -> None:
    import cv2

    crops = tmp_path / "crops"
    result = runner.invoke(app, ["recognize", str(letter_files / "R.png"), "--save-crops", str(crops)])
    assert result.exit_code == 0, result.output
    saved = cv2.imread(str(crops / "R_R.png"), cv2.IMREAD_UNCHANGED)
    assert saved.shape == (32, 32) and saved.max() == 255 and saved[0].max() == 0


@pytest.mark.parametrize(
    "args, needle",
    [(["--model", "MISSING"], "model not found"), (["--model", "NOTONNX"], "not a model onnxruntime can load"),
     (["--threshold", "magic"], "unknown threshold")],
)  # fmt: skip
def test_recognize_with_a_bad_model_or_option_fails_cleanly(letter_files: Path, tmp_path: Path, args, needle) -> None:
    (tmp_path / "NOTONNX").write_text("hello")
    args = [str(tmp_path / a) if a in ("MISSING", "NOTONNX") else a for a in args]
    result = runner.invoke(app, ["recognize", str(letter_files / "R.png"), *args])
    assert_clean_error(result, 1, needle)


def test_export_writes_a_model_that_recognize_reads(untrained_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    result = runner.invoke(app, ["export", str(out), "--checkpoint", str(untrained_checkpoint), "--parity-samples", "64"])
    assert result.exit_code == 0, result.output
    assert "Conv 5" in result.stdout and "batch 64" in result.stdout
    read = runner.invoke(app, ["recognize", str(draw_letter(tmp_path / "a.png", "A")), "--model", str(out), "--json"])
    assert read.exit_code == 0, read.output
    assert json.loads(read.stdout)["letter"] in LETTERS


def test_export_of_a_missing_checkpoint_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "m.onnx"), "--checkpoint", str(tmp_path / "nope")])
    assert_clean_error(result, 1, "nope")


def test_recognize_in_a_subprocess_never_loads_torch(letter_files: Path) -> None:
    code = (
        "import sys\n"
        "from lettercnn.cli import app\n"
        f"try:\n    app(['recognize', {str(letter_files / 'R.png')!r}])\n"
        "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print('LOADED', ','.join(m for m in ('torch', 'matplotlib', 'sklearn', 'onnx') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ": R " in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "LOADED"
