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
