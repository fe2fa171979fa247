"""Tests of lettercnn.experiments and `letters experiments`: the BatchNorm/dropout comparison."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lettercnn.cli import app
from lettercnn.errors import TrainingInterrupted
from lettercnn.experiments import COMPARISON_JSON, COMPARISON_MD, LOSS_CURVES, VARIANTS, run_experiments
from lettercnn.runs import HISTORY_FILE, LAST_CHECKPOINT, METRICS_FILE
from lettercnn.training.config import TrainConfig
from lettercnn.training.loop import Callbacks

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_NAMES = ["nobn-dropout0", "bn-dropout0", "bn-dropout0.3"]
# Three runs of one epoch on 10 synthetic images per letter: a few seconds each.
TINY = ["--per-letter", "10", "--epochs", "1"]


@pytest.fixture(scope="module")
def cli_comparison(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`letters experiments` run once with tiny settings: its folder and output."""
    out = tmp_path_factory.mktemp("exp") / "study"
    result = CliRunner().invoke(app, ["experiments", *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_each_variant_gets_a_run_folder_named_for_its_configuration(cli_comparison: tuple[Path, str]) -> None:
    out, _ = cli_comparison
    for name, variant in zip(RUN_NAMES, VARIANTS):
        config = json.loads((out / name / "config.json").read_text())
        assert (config["batch_norm"], config["dropout"]) == (variant.batch_norm, variant.dropout)
        assert config["epochs"] == 1 and config["per_letter"] == 10  # the shared settings reach every run
        assert (out / name / "best.pt").is_file() and (out / name / METRICS_FILE).is_file()


def test_comparison_files_hold_one_row_per_run(cli_comparison: tuple[Path, str]) -> None:
    out, output = cli_comparison
    rows = json.loads((out / COMPARISON_JSON).read_text())["runs"]
    assert [row["variant"] for row in rows] == ["a", "b", "c"]
    for row, name in zip(rows, RUN_NAMES):
        metrics = json.loads((out / name / METRICS_FILE).read_text())
        assert row["test_accuracy"] == metrics["test"]["accuracy"]
        assert row["best_epoch"] == metrics["best_epoch"]
        assert row["final_val_loss"] == json.loads((out / name / HISTORY_FILE).read_text())[-1]["val_loss"]
    markdown = (out / COMPARISON_MD).read_text()
    assert all(f"`{name}`" in markdown for name in RUN_NAMES)
    assert (out / LOSS_CURVES).read_bytes().startswith(PNG_MAGIC)
    assert "BatchNorm and dropout compared" in output and str(out) in output


def stop_at_first_batch_of(stopped: object) -> Callable[[object], Callbacks]:
    """Callbacks that press Ctrl-C at the first training batch of the variant ``stopped``."""

    def callbacks(variant: object) -> Callbacks:
        def on_batch(*_args: object) -> None:
            if variant is stopped:
                raise KeyboardInterrupt

        return Callbacks(on_batch=on_batch)

    return callbacks


def test_a_second_comparison_never_overwrites_the_first(cli_comparison: tuple[Path, str]) -> None:
    out, _ = cli_comparison
    before = (out / COMPARISON_JSON).read_bytes()
    with pytest.raises(TrainingInterrupted) as stop:
        run_experiments(TrainConfig(per_letter=10, epochs=1), out=out, callbacks=stop_at_first_batch_of(VARIANTS[0]))
    assert stop.value.run_dir.parent == out.with_name(out.name + "-2")
    assert (out / COMPARISON_JSON).read_bytes() == before


def test_resume_finishes_a_stopped_comparison_without_retraining_done_runs(tmp_path: Path) -> None:
    out = tmp_path / "study"
    with pytest.raises(TrainingInterrupted):
        run_experiments(TrainConfig(per_letter=10, epochs=1), out=out, callbacks=stop_at_first_batch_of(VARIANTS[1]))
    first_history = (out / RUN_NAMES[0] / HISTORY_FILE).read_bytes()
    assert (out / RUN_NAMES[1] / LAST_CHECKPOINT).is_file() and not (out / RUN_NAMES[1] / METRICS_FILE).exists()
    assert not (out / RUN_NAMES[2]).exists()

    comparison = run_experiments(resume=out)  # the saved settings: 10 per letter, 1 epoch
    assert comparison.out_dir == out
    assert (out / RUN_NAMES[0] / HISTORY_FILE).read_bytes() == first_history  # read back, not trained again
    assert [len(row.history) for row in comparison.rows] == [1, 1, 1]
    assert json.loads((out / RUN_NAMES[2] / "config.json").read_text())["per_letter"] == 10
    assert (out / COMPARISON_JSON).is_file()


def test_resume_of_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["experiments", "--resume", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "experiments folder not found" in result.output and "nowhere" in result.output


def test_interrupted_comparison_says_how_to_resume_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lettercnn import experiments

    run_dir = tmp_path / "study" / RUN_NAMES[1]

    def stopped(*_args: object, **_kwargs: object) -> None:
        raise TrainingInterrupted(run_dir, 1, 10)

    monkeypatch.setattr(experiments, "run_experiments", stopped)
    result = CliRunner().invoke(app, ["experiments", "--out", str(tmp_path / "study")])
    assert result.exit_code == 130
    assert f"continue with: letters experiments --resume {tmp_path / 'study'}" in result.output
