"""Tests of lettercnn.bench and `letters bench`: the side-by-side timing harness (no timed assertions)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lettercnn import bench, cli
from lettercnn.cli import app
from lettercnn.runtime import DEFAULT_MODEL
from lettercnn.training.evaluate import torch_paths

REPO = Path(__file__).resolve().parents[1]
SHIPPED_RUN = REPO / "models" / "bn-dropout0"
SAMPLES = REPO / "samples" / "letters"
ALL_PATHS = [bench.TORCH_IMG2COL, bench.TORCH_NN, bench.ORT_FP32, bench.ORT_INT8]
runner = CliRunner()


@pytest.fixture(autouse=True)
def quick_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Few repetitions: these tests check what is measured, not how fast."""
    monkeypatch.setattr(bench, "WARMUP_RUNS", 1)
    monkeypatch.setattr(bench, "MIN_RUNS", 3)
    monkeypatch.setattr(bench, "ROUNDS", 2)
    monkeypatch.setattr(bench, "LARGE_WARMUP_RUNS", 1)
    monkeypatch.setattr(bench, "LARGE_MIN_RUNS", 2)
    monkeypatch.setattr(bench, "MATMUL_N", 256)


@pytest.fixture(scope="module")
def letter_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples sorted into letter folders (A/, b/ ...), the way a labelled set is kept."""
    root = tmp_path_factory.mktemp("labelled")
    for sample in SAMPLES.iterdir():
        (root / sample.name[0]).mkdir(exist_ok=True)
        shutil.copyfile(sample, root / sample.name[0] / sample.name)
    return root


def test_paths_take_turns_so_drift_slows_them_alike() -> None:
    order: list[str] = []
    paths = [bench.InferencePath(name, lambda _x, name=name: order.append(name), 0) for name in "ab"]
    timings = bench.time_side_by_side(paths, batch=1, rounds=3)  # 3 runs each (fixture): one per round
    assert order == ["a", "b"] + ["a", "b"] * 3  # one warm-up each, then turns
    assert len(timings) == 2 and all(t.best <= t.median <= t.p90 for t in timings)


def test_every_path_is_timed_on_the_same_weights(letter_folder: Path) -> None:
    torch_rows = torch_paths(SHIPPED_RUN)
    result = bench.run_bench(torch_paths=torch_rows, batches=[1, 4], threads=[1], data=letter_folder, cold=False)
    assert [row.path for row in result.rows] == ALL_PATHS
    for row in result.rows:
        assert set(row.latency_ms) == {1, 4} and all(0 < t.best <= t.median <= t.p90 for t in row.latency_ms.values())
        assert row.images_per_s(4) > 0 and row.gflops(4) == pytest.approx(row.images_per_s(4) * 2 * 93.1e6 / 1e9)
    accuracies = {row.path: row.accuracy for row in result.rows}
    assert accuracies[bench.TORCH_IMG2COL] == accuracies[bench.TORCH_NN] == accuracies[bench.ORT_FP32] == 1.0
    assert result.speedup(result.rows[0], 1) == 1.0
    assert result.validation == f"14 images under {letter_folder}"
    assert set(result.matmul_gflops[1]) == {bench.MATMUL_ORT, bench.MATMUL_TORCH}
    assert all(gflops > 0 for gflops in result.matmul_gflops[1].values())
    assert result.notes == []
    for row in result.rows:  # calibration: ECE and NLL at temperature 1 and at the model's own
        assert row.ece is not None and row.nll is not None
        assert all(0.0 <= value <= 1.0 for value in row.ece) and all(value >= 0 for value in row.nll)
    fp32 = next(row for row in result.rows if row.path == bench.ORT_FP32)
    torch_row = next(row for row in result.rows if row.path == bench.TORCH_NN)
    assert fp32.ece == pytest.approx(torch_row.ece, abs=1e-4)  # same weights, same temperature


def test_without_torch_the_torch_rows_are_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "missing_module", lambda: "torch")
    result = runner.invoke(app, ["bench", "--batch", "1", "--threads", "1", "--no-cold", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["validation"] == ""  # the model's own split needs the training side
    assert [row["path"] for row in figures["rows"]] == [bench.ORT_FP32, bench.ORT_INT8]
    assert figures["rows"][1]["speedup"]["1"] == pytest.approx(
        figures["rows"][0]["latency_ms"]["1"]["median"] / figures["rows"][1]["latency_ms"]["1"]["median"]
    )
    assert any("torch is not installed" in note for note in figures["notes"])


def test_a_model_without_int8_twin_skips_that_row(tmp_path: Path, letter_folder: Path) -> None:
    shutil.copyfile(DEFAULT_MODEL, tmp_path / "m.onnx")
    result = bench.run_bench(tmp_path / "m.onnx", torch_paths=torch_paths(SHIPPED_RUN), batches=[1], threads=[1],
                             cold=False, data=letter_folder)  # fmt: skip
    assert [row.path for row in result.rows][-1] == bench.ORT_FP32
    assert any("no m.int8.onnx" in note for note in result.notes)


def test_cold_start_measures_the_recognize_process_not_the_bench(tmp_path: Path) -> None:
    start = bench.cold_start(bench.sample_image(tmp_path), runs=1)
    assert start.wall_s > 0
    assert 50 < start.peak_rss_mb < 1000  # the command's own memory, not this pytest process's


def test_bench_json_holds_every_figure(letter_folder: Path) -> None:
    result = runner.invoke(app, ["bench", "--batch", "1,4", "--threads", "1", "--no-cold", "--json",
                                 "--data", str(letter_folder), "--checkpoint", str(SHIPPED_RUN)])  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert [row["path"] for row in figures["rows"]] == ALL_PATHS
    row = figures["rows"][2]
    assert set(row["latency_ms"]["1"]) == {"median", "p90", "best"}
    assert row["peak_gflops"]["4"] >= row["gflops"]["4"]
    assert row["speedup"]["1"] > 0 and row["gflops"]["4"] > 0 and row["size_bytes"] > 1e6
    assert figures["network_macs"] == 93.1e6 and figures["cold_start"] is None


def test_bench_table_states_threads_and_reference(letter_folder: Path) -> None:
    result = runner.invoke(app, ["bench", "--batch", "1,4", "--threads", "1", "--no-cold",
                                 "--data", str(letter_folder), "--checkpoint", str(SHIPPED_RUN)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 thread" in result.output and "onnxruntime MatMul" in result.output and "torch.mm" in result.output
    assert "the network runs at" in result.output
    assert f"Accuracy on: 14 images under {letter_folder}" in result.output


@pytest.mark.parametrize(
    "args, message",
    [(["--batch", "1,x"], "--batch takes comma-separated integers"),
     (["--threads", "0"], "--threads takes positive integers"),
     (["--checkpoint", "nowhere"], "checkpoint not found: nowhere"),
     (["--data", "nowhere"], "data folder not found: nowhere"),
     (["--model", "nowhere.onnx"], "model not found: nowhere.onnx")],
)  # fmt: skip
def test_bad_bench_options_are_one_error_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["bench", "--no-cold", *args])
    assert result.exit_code == 1
    assert f"Error: {message}" in result.output and "Traceback" not in result.output


def test_normalised_inputs_of_a_labelled_folder(letter_folder: Path) -> None:
    labelled = bench.folder_validation(letter_folder)
    assert labelled.inputs().shape == (14, 1, 32, 32) and labelled.inputs().dtype == np.float32
    letters = sorted(sample.name[0].upper() for sample in SAMPLES.iterdir())
    assert sorted(labelled.targets.tolist()) == [ord(letter) - ord("A") for letter in letters]


def test_an_image_belongs_to_the_letter_of_its_top_folder_however_deep(tmp_path: Path) -> None:
    (tmp_path / "upper_b" / "x").mkdir(parents=True)  # data/folder.py: upper_b/x/003.png is a B
    shutil.copyfile(SAMPLES / "B_marker.png", tmp_path / "upper_b" / "x" / "003.png")
    labelled = bench.folder_validation(tmp_path)
    assert labelled.targets.tolist() == [1]
