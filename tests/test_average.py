"""Tests of lettercnn.training.average and ``letters average``: a model soup of tiny runs."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from typer.testing import CliRunner

from lettercnn.cli import app
from lettercnn.export import export_onnx
from lettercnn.metadata import META_TRAIN
from lettercnn.nn.checkpoint import checkpoint_payload, load_checkpoint
from lettercnn.nn.model import LetterCNN
from lettercnn.runs import BEST_CHECKPOINT, CONFIG_FILE, METRICS_FILE
from lettercnn.training.average import average_weights
from lettercnn.training.config import TrainConfig
from lettercnn.training.loop import RunResult, fit

runner = CliRunner()


def model_payload(seed: int, **config: object) -> dict[str, object]:
    torch.manual_seed(seed)
    return checkpoint_payload(LetterCNN(**config))


@pytest.fixture(scope="module")
def tuned_run(tiny_run: RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run fine-tuned one epoch with another seed (``--init``): a second soup ingredient."""
    runs_dir = tmp_path_factory.mktemp("tuned")
    config = TrainConfig(per_letter=10, epochs=1, batch_size=32, seed=1, init=str(tiny_run.run_dir),
                         runs_dir=str(runs_dir), name="tuned")  # fmt: skip
    return fit(config).run_dir


def test_the_average_is_the_mean_of_every_weight_and_counters_take_the_largest() -> None:
    payloads = [model_payload(seed) for seed in (1, 2, 3)]
    payloads[2]["state_dict"]["block1.bn.num_batches_tracked"] = torch.tensor(7)
    averaged = average_weights(payloads, ["a", "b", "c"])
    assert set(averaged) == set(payloads[0]["state_dict"])
    for key, value in averaged.items():
        stack = torch.stack([p["state_dict"][key] for p in payloads])
        if value.is_floating_point():
            torch.testing.assert_close(value, stack.double().mean(0).float())
            assert not torch.equal(value, payloads[0]["state_dict"][key]) or stack.std() == 0
        else:
            assert value == stack.max()
    assert averaged["block1.bn.num_batches_tracked"] == 7


@pytest.mark.parametrize(
    ("other", "needle"),
    [
        ({"batch_norm": False}, "b has batch_norm False and a True; only runs of one model average"),
        ({"dropout": 0.3}, "b has dropout 0.3 and a 0.0; only runs of one model average"),
    ],
)
def test_runs_of_another_model_are_refused_naming_both(other: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        average_weights([model_payload(1), model_payload(2, **other)], ["a", "b"])


def test_one_run_is_no_average() -> None:
    with pytest.raises(ValueError, match="averaging needs two runs or more, got 1"):
        average_weights([model_payload(1)], ["a"])


def test_letters_average_writes_a_run_of_the_mean_weights_scored_beside_its_runs(
    tiny_run: RunResult, tuned_run: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["average", str(tiny_run.run_dir), str(tuned_run), "--runs-dir", str(tmp_path),
                                 "--name", "soup", "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    soup = tmp_path / "soup"
    assert "Weights averaged" in result.output and f"Run folder: {soup}" in result.output
    ingredients = [load_checkpoint(run)["state_dict"] for run in (tiny_run.run_dir, tuned_run)]
    weights = LetterCNN.from_checkpoint(soup).state_dict()
    key = "block1.conv.weight"
    assert not torch.equal(ingredients[0][key], ingredients[1][key])
    torch.testing.assert_close(weights[key], (ingredients[0][key].double() + ingredients[1][key]).div(2).float())
    # The first run's settings: its splits are the ones scored, and the ones export calibrates on.
    assert json.loads((soup / CONFIG_FILE).read_text()) == tiny_run.config.to_dict()
    metrics = json.loads((soup / METRICS_FILE).read_text())
    assert [run["name"] for run in metrics["averaged_from"]] == [
        str(tiny_run.run_dir / BEST_CHECKPOINT), str(tuned_run / BEST_CHECKPOINT)
    ]  # fmt: skip
    assert metrics["sizes"] == {"val": 26, "test": 26} and metrics["test"]["count"] == 26
    assert load_checkpoint(soup)["val_acc"] == metrics["best_val_accuracy"]
    # It exports like any run, and the model says what it is the average of.
    exported = export_onnx(soup, tmp_path / "soup.onnx", parity_samples=64).file
    train = json.loads({p.key: p.value for p in onnx.load(exported).metadata_props}[META_TRAIN])
    assert train["averaged_from"] == [run["name"] for run in metrics["averaged_from"]] and "epoch" not in train


def test_letters_average_of_a_missing_or_foreign_run_is_one_error_line(tiny_run: RunResult, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save(model_payload(1, batch_norm=False), foreign)
    for other, needle in ((tmp_path / "nope", "checkpoint not found"), (foreign, "has batch_norm False")):
        result = runner.invoke(app, ["average", str(tiny_run.run_dir), str(other), "--runs-dir", str(tmp_path)])
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], result.stderr
    assert not (tmp_path / "average").exists()
