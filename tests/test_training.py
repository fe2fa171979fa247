"""Tests of lettercnn.training: fitting, run folders, checkpoints, resume, NaN and Ctrl-C handling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY  # the settings of the shared tiny run
from lettercnn.data import synthetic_splits, write_synthetic
from lettercnn.errors import NonFiniteLossError, RunFinishedError, TrainingInterrupted
from lettercnn.labels import LETTERS, NUM_CLASSES
from lettercnn.nn.model import LetterCNN
from lettercnn.runs import (
    BEST_CHECKPOINT,
    CONFIG_FILE,
    CONFUSION_PLOT,
    HISTORY_FILE,
    LAST_CHECKPOINT,
    LOSS_PLOT,
    METRICS_FILE,
    EpochRecord,
)
from lettercnn.training.config import TrainConfig, default_run_name, resume_config
from lettercnn.training.evaluate import EvalResult, evaluate, evaluate_checkpoint, held_out
from lettercnn.training.loop import Callbacks, RunResult, fit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# `letters train` with the TINY settings, in a real process (the interpreter running the tests).
TINY_TRAIN_COMMAND = [
    sys.executable, "-c", "from lettercnn.cli import app; app(prog_name='letters')", "train",
    "--per-letter", str(TINY["per_letter"]), "--epochs", str(TINY["epochs"]),
    "--batch-size", str(TINY["batch_size"]), "--seed", str(TINY["seed"]), "--name", "tiny",
]  # fmt: skip
# How long a subprocess run may take to finish its first epoch, and how often we look.
FIRST_EPOCH_TIMEOUT_S = 300
POLL_S = 0.05
# Once epoch 1 has ended, the signal waits a third of its time, and at most this long: on a
# loaded machine epoch 1 (warm-up and all) can take more than three times epoch 2.
INSIDE_EPOCH_2_MAX_S = 0.25


def tiny_config(runs_dir: Path, **overrides: object) -> TrainConfig:
    """A config for a run of a few seconds."""
    return TrainConfig(**{**TINY, "runs_dir": str(runs_dir), "name": "tiny", **overrides})


def same_training(a: list[EpochRecord], b: list[EpochRecord]) -> None:
    """Assert two histories trained identically (timings aside)."""
    assert [r.epoch for r in a] == [r.epoch for r in b]
    for x, y in zip(a, b):
        for field in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert getattr(x, field) == pytest.approx(getattr(y, field), rel=1e-5, abs=1e-7), (x.epoch, field)


def test_run_folder_holds_every_run_file(tiny_run: RunResult) -> None:
    run = tiny_run.run_dir
    for name in (CONFIG_FILE, HISTORY_FILE, BEST_CHECKPOINT, LAST_CHECKPOINT, METRICS_FILE, LOSS_PLOT, CONFUSION_PLOT):
        assert (run / name).is_file(), name
    assert (run / LOSS_PLOT).read_bytes().startswith(PNG_MAGIC)
    assert (run / CONFUSION_PLOT).read_bytes().startswith(PNG_MAGIC)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_history_and_metrics_describe_the_run(tiny_run: RunResult) -> None:
    run = tiny_run.run_dir
    history = json.loads((run / HISTORY_FILE).read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    expected = {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s"}
    assert expected <= set(history[0])
    assert history[0]["images_per_s"] > 0
    metrics = json.loads((run / METRICS_FILE).read_text())
    assert metrics["test"]["accuracy"] == pytest.approx(tiny_run.test.accuracy)
    assert metrics["test"]["count"] == NUM_CLASSES  # 1 test image per letter
    assert list(metrics["test"]["per_class"]) == list(LETTERS)
    assert len(metrics["test"]["confusion"]) == NUM_CLASSES
    assert all(len(row) == NUM_CLASSES for row in metrics["test"]["confusion"])
    assert len(metrics["test"]["worst_classes"]) == 5
    assert metrics["best_epoch"] in (1, 2)
    assert metrics["device"] == "cpu"
    assert "synthetic" in metrics["data_source"]
    assert metrics["wall_seconds"] > 0
    assert json.loads((run / CONFIG_FILE).read_text())["name"] == run.name == "tiny"


def test_best_checkpoint_round_trips_through_from_checkpoint(tiny_run: RunResult) -> None:
    model = LetterCNN.from_checkpoint(tiny_run.run_dir)  # a run folder means its best.pt
    assert model.config.batch_norm is True
    test_set = synthetic_splits(TINY["per_letter"], seed=TINY["seed"]).test
    assert evaluate(model, test_set).accuracy == pytest.approx(tiny_run.test.accuracy)
    payload = torch.load(tiny_run.run_dir / BEST_CHECKPOINT, weights_only=True)
    assert payload["epoch"] == tiny_run.best_epoch
    assert payload["train_config"]["per_letter"] == TINY["per_letter"]
    assert payload["labels"] == list(LETTERS)


def test_last_checkpoint_loads_with_weights_only(tiny_run: RunResult) -> None:
    payload = torch.load(tiny_run.run_dir / LAST_CHECKPOINT, weights_only=True)
    assert payload["epoch"] == 2
    assert {"optimizer", "scheduler", "history", "rng"} <= set(payload)
    LetterCNN.from_checkpoint(tiny_run.run_dir / LAST_CHECKPOINT)


def test_default_run_name_says_the_configuration() -> None:
    assert default_run_name(TrainConfig(dropout=0.3)) == "bn-dropout0.3"
    assert default_run_name(TrainConfig(batch_norm=False, dropout=0.0)) == "nobn-dropout0"


def interrupt_after(epoch: int) -> Callbacks:
    """Callbacks that press Ctrl-C once ``epoch`` has ended."""

    def on_epoch_end(record: EpochRecord) -> None:
        if record.epoch == epoch:
            raise KeyboardInterrupt

    return Callbacks(on_epoch_end=on_epoch_end)


def test_resume_after_ctrl_c_continues_exactly(tiny_run: RunResult, tmp_path: Path) -> None:
    with pytest.raises(TrainingInterrupted) as stop:
        fit(tiny_config(tmp_path), callbacks=interrupt_after(1))
    run = stop.value.run_dir
    assert stop.value.epochs_done == 1
    assert not (run / METRICS_FILE).exists()

    resumed = fit(resume=run)
    assert resumed.run_dir == run
    same_training(resumed.history, tiny_run.history)
    assert resumed.test.accuracy == pytest.approx(tiny_run.test.accuracy)
    assert len(json.loads((run / HISTORY_FILE).read_text())) == 2


def test_resuming_a_tiny_run_is_refused(tiny_run: RunResult) -> None:
    with pytest.raises(RunFinishedError, match="already trained all 2 epochs"):
        fit(resume=tiny_run.run_dir)


def test_resume_refuses_changed_settings_but_takes_device(tiny_run: RunResult) -> None:
    with pytest.raises(ValueError, match="epochs"):
        resume_config(tiny_run.run_dir, epochs=5)
    config = resume_config(tiny_run.run_dir, device="cpu", epochs=None, lr=tiny_run.config.lr)
    assert config.device == "cpu"
    assert config.epochs == TINY["epochs"]


def test_resume_needs_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="last.pt"):
        fit(resume=tmp_path)


def test_init_starts_from_the_checkpoint_weights(tiny_run: RunResult, tmp_path: Path) -> None:
    start = torch.load(tiny_run.run_dir / BEST_CHECKPOINT, weights_only=True)["state_dict"]
    # A learning rate too small to move anything: the run's weights are the checkpoint's.
    tuned = fit(tiny_config(tmp_path, init=str(tiny_run.run_dir), epochs=1, lr=1e-12))
    after = torch.load(tuned.run_dir / BEST_CHECKPOINT, weights_only=True)["state_dict"]
    weights = [name for name in start if name.endswith("weight")]
    assert weights
    for name in weights:
        assert torch.allclose(after[name], start[name], atol=1e-6), name
    assert json.loads((tuned.run_dir / CONFIG_FILE).read_text())["init"] == str(tiny_run.run_dir)
    # Without init the same run starts from its own random weights.
    fresh = fit(tiny_config(tmp_path, name="fresh", epochs=1, lr=1e-12))
    fresh_weights = torch.load(fresh.run_dir / BEST_CHECKPOINT, weights_only=True)["state_dict"]
    assert not all(torch.allclose(fresh_weights[name], start[name], atol=1e-6) for name in weights)


def test_init_refuses_another_batch_norm_setting_before_rendering(tiny_run: RunResult, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="trained with BatchNorm, this run asks --no-batch-norm"):
        fit(tiny_config(tmp_path, init=str(tiny_run.run_dir), batch_norm=False))
    assert not (tmp_path / "tiny").exists()


def test_init_refuses_weights_of_another_architecture_before_rendering(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"model_config": {"num_classes": NUM_CLASSES}, "state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(ValueError, match="weights of another architecture"):
        fit(tiny_config(tmp_path, init=str(foreign)))
    assert not (tmp_path / "tiny").exists()


def test_nan_loss_stops_training_and_keeps_best(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.nn.functional as F

    real_cross_entropy = F.cross_entropy

    def poison_after_first_epoch(record: EpochRecord) -> None:
        monkeypatch.setattr(F, "cross_entropy", lambda *a, **k: real_cross_entropy(*a, **k) + float("nan"))

    with pytest.raises(NonFiniteLossError, match=r"loss became nan at epoch 2, batch 1.*best\.pt keeps epoch 1"):
        fit(tiny_config(tmp_path, epochs=3), callbacks=Callbacks(on_epoch_end=poison_after_first_epoch))
    run = tmp_path / "tiny"
    assert torch.load(run / BEST_CHECKPOINT, weights_only=True)["epoch"] == 1
    assert torch.load(run / LAST_CHECKPOINT, weights_only=True)["epoch"] == 1
    assert len(json.loads((run / HISTORY_FILE).read_text())) == 1


def test_training_without_batch_norm_runs(tmp_path: Path) -> None:
    result = fit(tiny_config(tmp_path, epochs=1, batch_norm=False, name=None))
    assert result.run_dir.name == "nobn-dropout0"
    assert LetterCNN.from_checkpoint(result.run_dir).config.batch_norm is False


def test_invalid_settings_name_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="adam, sgd"):
        TrainConfig(optimizer="rmsprop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        TrainConfig(device="tpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dropout"):
        TrainConfig(dropout=1.0)
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)


def test_missing_data_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        fit(tiny_config(tmp_path, data=str(tmp_path / "nowhere")))
    assert not (tmp_path / "tiny").exists(), "no run folder for a run that never started"


def test_eval_of_a_split_tree_scores_its_test_folder(tiny_run: RunResult, tmp_path: Path) -> None:
    write_synthetic(tmp_path / "tree" / "train", 3, seed=1)
    write_synthetic(tmp_path / "tree" / "test", 2, seed=2)
    result = evaluate_checkpoint(tiny_run.run_dir, tmp_path / "tree", device="cpu")
    assert result.count == 2 * NUM_CLASSES
    assert str(tmp_path / "tree" / "test") in result.source
    fitted = result.calibration  # ECE/NLL at temperature 1 and at the one export would fit
    assert fitted is not None and fitted["temperature"] > 0 and "validation split" in fitted["fitted_on"]
    assert 0 <= fitted["ece_before"] <= 1 and 0 <= fitted["ece_after"] <= 1 and fitted["nll_after"] > 0
    assert result.to_dict()["calibration"] == fitted


def test_eval_of_the_training_folder_scores_only_its_held_out_split(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "letters", 10, seed=3)
    run = fit(tiny_config(tmp_path / "runs", data=str(tmp_path / "letters"), epochs=1))
    result = evaluate_checkpoint(run.run_dir, tmp_path / "letters")
    assert result.count == run.test.count < 10 * NUM_CLASSES
    assert result.accuracy == pytest.approx(run.test.accuracy)
    assert "test split" in result.source


def test_eval_result_counts_per_class_and_confusions() -> None:
    confusion = [[0] * NUM_CLASSES for _ in range(NUM_CLASSES)]
    confusion[0][0], confusion[0][1] = 3, 1  # A: 3 right, once read as B
    confusion[1][1] = 2  # B: always right
    result = EvalResult.from_confusion(confusion, loss_sum=3.0)
    assert result.accuracy == pytest.approx(5 / 6)
    assert result.loss == pytest.approx(0.5)
    assert result.per_class["A"] == pytest.approx(0.75)
    assert result.per_class["C"] is None  # no images of C
    assert result.worst_classes(1) == [("A", 0.75)]
    assert result.top_confusions() == [("A", "B", 1)]
    assert result.confused_with("A") == ("B", 1)


def test_short_training_learns_the_letters(tmp_path: Path) -> None:
    """Under a minute on 2 cores takes the model from chance (4%) past 45% on held-out letters."""
    # 40 per letter: 832 training images (and 125 of no letter); 4 epochs of 30 steps reach
    # ~58% validation accuracy on the synthetic set of 200+ fonts (a third of them
    # handwriting and script) and photo-like scenes; learning nothing would stay at 4%.
    config = TrainConfig(per_letter=40, epochs=4, batch_size=32, lr=3e-3, runs_dir=str(tmp_path))
    result = fit(config)
    assert result.best_val_acc >= 0.45, [r.val_acc for r in result.history]


def same_threads() -> dict[str, str]:
    """The environment for a child that computes like this process: as many torch threads
    (sums split over other thread counts round differently)."""
    return {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}


def start_tiny_training(runs_dir: Path) -> subprocess.Popen[str]:
    """`letters train` with the TINY settings in a child process, run folder ``runs_dir/tiny``."""
    command = [*TINY_TRAIN_COMMAND, "--runs-dir", str(runs_dir)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=same_threads())


def wait_until_inside_epoch_2(process: subprocess.Popen[str], run: Path) -> None:
    """Return a moment after epoch 1 ended (loss.png is an epoch's last file), inside epoch 2."""
    deadline = time.monotonic() + FIRST_EPOCH_TIMEOUT_S
    while not (run / LOSS_PLOT).exists():
        if process.poll() is not None:
            pytest.fail(f"training ended before its first epoch did: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no epoch finished within {FIRST_EPOCH_TIMEOUT_S} s")
        time.sleep(POLL_S)
    time.sleep(min(json.loads((run / HISTORY_FILE).read_text())[0]["seconds"] / 3, INSIDE_EPOCH_2_MAX_S))


def assert_holds_epoch_1(run: Path) -> None:
    """best.pt and last.pt load and hold epoch 1; history.json has its one record."""
    assert torch.load(run / LAST_CHECKPOINT, weights_only=True)["epoch"] == 1
    assert torch.load(run / BEST_CHECKPOINT, weights_only=True)["epoch"] == 1
    assert [r["epoch"] for r in json.loads((run / HISTORY_FILE).read_text())] == [1]
    assert not (run / METRICS_FILE).exists()


@pytest.mark.slow
def test_sigkill_mid_epoch_keeps_the_checkpoints_and_resume_matches_an_unbroken_run(
    tiny_run: RunResult, tmp_path: Path
) -> None:
    run = tmp_path / "tiny"
    process = start_tiny_training(tmp_path)
    wait_until_inside_epoch_2(process, run)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert_holds_epoch_1(run)

    resume = [*TINY_TRAIN_COMMAND[:4], "--resume", str(run)]
    resumed = subprocess.run(resume, capture_output=True, text=True, timeout=600, env=same_threads())
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 1/2" in resumed.stdout
    history = [EpochRecord(**record) for record in json.loads((run / HISTORY_FILE).read_text())]
    same_training(history, tiny_run.history)  # measured: equal to the last bit, on one machine
    metrics = json.loads((run / METRICS_FILE).read_text())
    assert metrics["test"]["accuracy"] == pytest.approx(tiny_run.test.accuracy)


@pytest.mark.slow
def test_sigint_mid_epoch_keeps_last_pt_and_exits_130_with_one_line(tiny_run: RunResult, tmp_path: Path) -> None:
    run = tmp_path / "tiny"
    process = start_tiny_training(tmp_path)
    wait_until_inside_epoch_2(process, run)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == [
        f"Interrupted: last.pt keeps 1/2 finished epochs; continue with: letters train --resume {run}"
    ]
    assert_holds_epoch_1(run)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_a_checkpoint_write_that_fails_midway_leaves_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = torch.save

    def disk_full_after_epoch_1(payload: dict, path: Path) -> None:
        if payload.get("epoch") == 1 and "optimizer" in payload:  # last.pt after epoch 1
            Path(path).write_bytes(b"PK\x03\x04 half a checkpoint")
            raise OSError(28, "No space left on device")
        real_save(payload, path)

    monkeypatch.setattr(torch, "save", disk_full_after_epoch_1)
    with pytest.raises(OSError, match="No space left"):
        fit(tiny_config(tmp_path, epochs=1))
    run = tmp_path / "tiny"
    assert torch.load(run / LAST_CHECKPOINT, weights_only=True)["epoch"] == 0  # written before epoch 1
    assert torch.load(run / BEST_CHECKPOINT, weights_only=True)["epoch"] == 1
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_held_out_images_are_a_trees_own_test_folder_or_a_split_training_never_saw(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "tree" / "train", 10, seed=1)
    write_synthetic(tmp_path / "tree" / "test", 1, seed=2)
    test = held_out("test", None, tmp_path / "tree")
    assert (
        test.source == f"all {NUM_CLASSES} images in {tmp_path / 'tree' / 'test'}" and len(test.targets) == NUM_CLASSES
    )
    val = held_out("val", TrainConfig(data=str(tmp_path / "tree"), seed=3).to_dict())
    assert val.source.startswith("the validation split of ") and "seed 3" in val.source
    assert len(val.targets) == NUM_CLASSES  # 10% of 10 per letter, carved from train/
    with pytest.raises(ValueError, match="does not say what data it was trained on"):
        held_out("test", None)
