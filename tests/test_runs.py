"""Tests of lettercnn.runs: the run folder's names, making one, reading it back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lettercnn.runs import (
    DEFAULT_RUN,
    HISTORY_FILE,
    LAST_CHECKPOINT,
    make_run_dir,
    read_history,
    read_json,
    read_metrics,
    resolve_run,
)

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from lettercnn.training.loop import RunResult


def test_run_names_never_overwrite(tmp_path: Path) -> None:
    made = [make_run_dir(tmp_path, "bn-dropout0").name for _ in range(3)]
    assert made == ["bn-dropout0", "bn-dropout0-2", "bn-dropout0-3"]


def test_a_missing_or_broken_json_file_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"config\.json is missing"):
        read_json(tmp_path / "config.json")
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"metrics\.json is not valid JSON"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"metrics\.json is not a run's metrics"):
        read_metrics(tmp_path)


def test_a_run_resumes_from_its_folder_or_its_last_checkpoint_only(tmp_path: Path) -> None:
    (tmp_path / LAST_CHECKPOINT).write_bytes(b"")
    (tmp_path / "best.pt").write_bytes(b"")
    assert resolve_run(tmp_path) == resolve_run(tmp_path / LAST_CHECKPOINT) == (tmp_path, tmp_path / LAST_CHECKPOINT)
    with pytest.raises(ValueError, match="only last.pt keeps the optimizer state"):
        resolve_run(tmp_path / "best.pt")
    with pytest.raises(FileNotFoundError, match="run not found"):
        resolve_run(tmp_path / "gone")


def test_the_default_run_is_what_letters_train_writes_with_every_default() -> None:
    from lettercnn.training.config import TrainConfig, default_run_name

    assert DEFAULT_RUN == Path(TrainConfig().runs_dir) / default_run_name(TrainConfig())


def test_read_history_gives_the_runs_records_or_a_clear_error(tiny_run: RunResult, tmp_path: Path) -> None:
    assert read_history(tiny_run.run_dir) == tiny_run.history
    with pytest.raises(ValueError, match="history.json is missing"):
        read_history(tmp_path)
    (tmp_path / HISTORY_FILE).write_text('[{"epoch": 1}]')
    with pytest.raises(ValueError, match="history.json is not a run history"):
        read_history(tmp_path)
