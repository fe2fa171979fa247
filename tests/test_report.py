"""Tests of lettercnn.report: the entropies against hand-computed values, and `letters report` on a tiny run."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner, Result

from conftest import TINY  # the settings of the shared tiny run
from lettercnn import calibration
from lettercnn.cli import app
from lettercnn.data import synthetic_splits
from lettercnn.labels import NUM_CLASSES
from lettercnn.nn.checkpoint import checkpoint_payload
from lettercnn.nn.model import LetterCNN
from lettercnn.report import FIGURE_FILES, REPORT_HTML, REPORT_JSON, REPORT_MD, default_out_dir
from lettercnn.report.build import pick_index
from lettercnn.report.confidence import TABLE_THRESHOLDS, measure, reliability
from lettercnn.report.entropy import (
    counts_entropy,
    cross_entropy,
    entropy,
    feature_entropy,
    image_entropy,
    label_entropy,
    prediction_entropy,
    uniform_entropy,
)
from lettercnn.report.features import (
    Features,
    channel_patterns,
    load_model,
    load_test_images,
    strongest_kernel_share,
)
from lettercnn.report.page import LINKED_FIGURES
from lettercnn.report.tsne import perplexity_for, pick_samples
from lettercnn.runs import METRICS_FILE
from lettercnn.training.config import TrainConfig
from lettercnn.training.evaluate import held_out, model_logits
from lettercnn.training.loop import RunResult

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The smallest synthetic run with a test split: 10 per letter gives 8/1/1 train/val/test,
# so the tiny run has 26 test images and the default image is the middle one, #13.
MIDDLE_INDEX = NUM_CLASSES // 2
TSNE_SAMPLES = 20
# (width, height) of every figure, pixels: fixed by the figure code, not by the data.
FIGURE_SIZES = {
    "kernels_conv0": (1060, 617),
    "kernels_conv1": (1560, 963),
    "conv1_patterns": (1060, 1129),
    "feature_maps_conv0": (1170, 531),
    "feature_maps_conv1": (1170, 981),
    "tsne_hidden": (960, 900),
    "tsne_logits": (960, 900),
    "entropy": (1200, 624),
    "loss": (960, 540),
    "confusion": (1200, 1080),
    "reliability": (1440, 744),
    "risk_coverage": (1200, 900),
}


def binary_entropy(p: float) -> float:
    return -p * math.log(p) - (1 - p) * math.log(1 - p)


# --- the entropies, by hand ---------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 26, 256])
def test_entropy_of_a_uniform_distribution_over_n_is_ln_n(n: int) -> None:
    assert float(entropy(np.full(n, 1 / n))) == pytest.approx(math.log(n))
    assert uniform_entropy(n) == pytest.approx(math.log(n))


def test_entropy_of_a_one_hot_is_zero() -> None:
    assert float(entropy(np.eye(5)[2])) == 0.0
    assert float(counts_entropy(np.array([0, 0, 7, 0]))) == 0.0


def test_entropy_rejects_negative_or_unnormalised_probabilities() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        entropy(np.array([1.5, -0.5]))
    with pytest.raises(ValueError, match="sum to 1"):
        entropy(np.array([0.5, 0.2]))


@pytest.mark.parametrize("ink_pixels", [1, 256, 512, 1000])
def test_a_two_level_image_has_the_binary_entropy_of_its_fractions(ink_pixels: int) -> None:
    image = np.zeros((32, 32), np.uint8)
    image.flat[:ink_pixels] = 255
    assert float(image_entropy(image)) == pytest.approx(binary_entropy(ink_pixels / 1024))


def test_an_image_with_every_grey_level_once_has_entropy_ln_256() -> None:
    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert float(image_entropy(image)) == pytest.approx(math.log(256))
    batch = image_entropy(np.stack([image, np.zeros_like(image)]))
    assert batch == pytest.approx([math.log(256), 0.0])


def test_image_entropy_takes_8_bit_images_only() -> None:
    with pytest.raises(ValueError, match="uint8"):
        image_entropy(np.zeros((4, 4), np.float32))


def test_feature_entropy_is_0_for_a_constant_map_and_ln_bins_for_values_spread_evenly() -> None:
    constant = np.full((1, 4, 16, 16), 3.5)
    spread = (-2.0 + 7.0 * np.arange(256) / 255).repeat(4).reshape(1, 4, 16, 16)  # 4 values in each of 256 bins
    assert feature_entropy(np.concatenate([constant, spread])) == pytest.approx([0.0, math.log(256)])
    assert feature_entropy(spread, bins=4) == pytest.approx([math.log(4)])


def test_feature_entropy_bins_each_image_over_its_own_range_like_numpy() -> None:
    rng = np.random.default_rng(0)
    maps = np.maximum(rng.normal(size=(3, 16, 8, 8)), 0) * np.array([1.0, 10.0, 0.1])[:, None, None, None]
    for values, got in zip(maps, feature_entropy(maps)):
        counts, _ = np.histogram(values, bins=256, range=(values.min(), values.max()))
        assert got == pytest.approx(float(counts_entropy(counts)))
    # The per-image range makes the number blind to the activations' scale.
    assert feature_entropy(maps[:1] * 7.0) == pytest.approx(feature_entropy(maps[:1]))


def test_prediction_entropy_is_ln_26_for_equal_logits_and_near_0_for_a_sure_answer() -> None:
    logits = np.zeros((2, NUM_CLASSES))
    logits[1, 3] = 50.0
    uniform, sure = prediction_entropy(logits)
    assert uniform == pytest.approx(math.log(NUM_CLASSES))
    assert sure == pytest.approx(0.0, abs=1e-12)


def test_label_entropy_of_balanced_labels_is_ln_26_and_of_one_letter_0() -> None:
    assert label_entropy(np.arange(NUM_CLASSES).repeat(3), NUM_CLASSES) == pytest.approx(math.log(NUM_CLASSES))
    assert label_entropy(np.full(10, 4), NUM_CLASSES) == 0.0
    with pytest.raises(ValueError, match="class indices"):
        label_entropy(np.array([0, NUM_CLASSES]), NUM_CLASSES)


def test_cross_entropy_is_the_mean_minus_log_probability_of_the_true_class() -> None:
    logits = np.log(np.array([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]]))
    assert cross_entropy(logits, np.array([0, 1])) == pytest.approx((math.log(2) + math.log(4)) / 2)


def test_tsne_maps_every_image_of_a_small_set_and_a_fixed_subset_of_a_large_one() -> None:
    assert pick_samples(26, 2000).tolist() == list(range(26))
    subset = pick_samples(1000, 50)
    assert len(set(subset.tolist())) == 50 and subset.tolist() == sorted(subset.tolist())
    assert subset.tolist() == pick_samples(1000, 50).tolist()
    assert perplexity_for(2000) == 30.0 and perplexity_for(13) == 4.0
    with pytest.raises(ValueError, match="at least"):
        pick_samples(26, 2)


def test_a_channel_pattern_is_the_mean_input_patch_around_its_peaks_in_the_images_where_it_peaks_highest() -> None:
    glyphs = np.zeros((3, 8, 8), np.uint8)
    glyphs[0, 0, 0], glyphs[1, 5, 5], glyphs[2, 2, 2] = 200, 100, 50
    # Two channels: channel 0 peaks at (0, 0) of image 0 and (5, 5) of image 1, highest there;
    # channel 1 peaks highest in image 2, at (2, 2).
    peaks = np.array([[3.0, 0.0], [2.0, 0.0], [1.0, 9.0]])
    peak_at = np.array([[0 * 8 + 0, 7 * 8 + 7], [5 * 8 + 5, 0], [0, 2 * 8 + 2]])
    features = Features(*[np.zeros(0)] * 5, [], peaks, peak_at)
    patterns = channel_patterns(glyphs, features, radius=1, images=2)
    expected = np.zeros((2, 3, 3), np.float32)
    expected[0, 1, 1] = (200 + 100) / 2  # each peak's pixel sits at the centre of its patch
    expected[1, 1, 1] = (50 + 0) / 2  # image 2's, and image 0's at (7, 7) (tied with image 1: the first wins)
    assert np.array_equal(patterns, expected)


def test_the_strongest_kernel_share_is_1_over_inputs_when_spread_evenly_and_1_when_all_in_one() -> None:
    assert strongest_kernel_share(np.ones((4, 32, 5, 5))) == pytest.approx(1 / 32)
    one = np.zeros((4, 32, 5, 5))
    one[:, 7] = np.random.default_rng(0).normal(size=(4, 5, 5))
    assert strongest_kernel_share(one) == pytest.approx(1.0)


def test_the_reliability_bins_count_every_letter_and_their_weighted_gap_is_calibrations_ece() -> None:
    rng = np.random.default_rng(0)
    logits, targets = rng.normal(scale=3.0, size=(500, NUM_CLASSES)), rng.integers(0, NUM_CLASSES, 500)
    for temperature in (1.0, 0.5, 2.0):
        measured = reliability(logits, targets, temperature)
        probabilities = calibration.softmax(logits, temperature)
        assert measured.ece == calibration.ece(probabilities, targets)
        assert sum(b.count for b in measured.bins) == len(targets) and len(measured.bins) == calibration.ECE_BINS
        gap = sum(b.count * abs(b.accuracy - b.confidence) for b in measured.bins if b.count) / len(targets)
        assert gap == pytest.approx(measured.ece)
        for b in measured.bins:  # each bin's mean confidence lies inside it
            assert b.count == 0 or b.low <= b.confidence <= b.high


def test_without_validation_letters_nothing_is_fitted_and_the_table_is_at_temperature_1() -> None:
    rng = np.random.default_rng(1)
    logits, targets = rng.normal(scale=3.0, size=(60, NUM_CLASSES)), rng.integers(0, NUM_CLASSES, 60)
    measured = measure(logits, targets, val_logits=None, val_targets=None, other_logits=np.zeros((0, NUM_CLASSES)),
                       fitted_on="nothing: no validation split", non_letters_source="none")  # fmt: skip
    assert measured.after is None and measured.threshold is None and measured.at_threshold is None
    assert measured.temperature == 1.0 and [p.threshold for p in measured.table] == list(TABLE_THRESHOLDS)
    assert all(p.refused is None for p in measured.table)  # no non-letters: nothing to refuse
    assert measured.table[0].answered == 1.0  # threshold 0 answers every letter


def test_the_synthetic_test_split_is_rebuilt_exactly_as_training_made_it() -> None:
    config = TrainConfig(**TINY).to_dict()
    rebuilt = load_test_images(config, None, lambda *_: None)
    made = synthetic_splits(TINY["per_letter"], seed=TINY["seed"]).test
    assert np.array_equal(rebuilt.glyphs, made.glyphs)
    assert np.array_equal(rebuilt.targets, made.targets)


# --- `letters report` on a tiny run ---------------------------------------------------


@pytest.fixture(scope="module")
def reported(tiny_run: RunResult, tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    """`letters report` on the tiny run (default image indices), and its report folder."""
    out = tmp_path_factory.mktemp("report") / "tiny"
    args = ["report", "--checkpoint", str(tiny_run.run_dir), "--out", str(out), "--tsne-samples", str(TSNE_SAMPLES),
            "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result, out


def test_report_command_prints_the_entropy_table_and_the_page(reported: tuple[Result, Path]) -> None:
    result, out = reported
    assert "Entropy (nats)" in result.stdout
    for row in ("input image", "conv block 5", "prediction", "random guess (ln 26)", "model cross-entropy"):
        assert row in result.stdout
    assert re.search(
        r"Calibration: ECE [\d.]+% -> [\d.]+% at temperature [\d.]+; '\?' below [\d.]+ answers", result.stdout
    )
    assert result.stdout.strip().splitlines()[-1].endswith(str(out / REPORT_HTML))


def test_every_figure_is_a_png_of_the_expected_size(reported: tuple[Result, Path]) -> None:
    _, out = reported
    assert set(FIGURE_FILES) == set(FIGURE_SIZES)
    for key, name in FIGURE_FILES.items():
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        size = (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))  # the IHDR chunk
        assert size == FIGURE_SIZES[key], name


def test_report_json_holds_every_number(reported: tuple[Result, Path], tiny_run: RunResult) -> None:
    _, out = reported
    report = json.loads((out / REPORT_JSON).read_text())
    assert {
        "units", "checkpoint", "run", "data_source", "test_images", "accuracy", "run_accuracy", "feature_image",
        "entropy_image", "test_set", "tsne_samples", "tsne_requested", "tsne_perplexity", "figures", "seconds",
        "reference", "block_shapes", "conv1_strongest_kernel", "confidence",
    } <= set(report)  # fmt: skip
    assert report["units"] == "nats" and report["run"] == "tiny" and report["test_images"] == NUM_CLASSES
    image = report["entropy_image"]
    assert set(image) == {"index", "true_letter", "letter", "confidence", "input", "blocks", "prediction"}
    assert len(image["blocks"]) == 5 and 0 < image["confidence"] <= 1
    assert image["index"] == report["feature_image"]["index"] == MIDDLE_INDEX  # the defaults: in range, one image
    test_set = report["test_set"]
    assert set(test_set) == {"input", "blocks", "prediction", "random_guess", "labels", "cross_entropy",
                             "input_zeros", "block_zeros"}  # fmt: skip
    assert test_set["random_guess"] == pytest.approx(math.log(NUM_CLASSES))
    assert test_set["labels"] == pytest.approx(math.log(NUM_CLASSES))  # one test image per letter
    for value in [test_set["input"], *test_set["blocks"], image["input"], *image["blocks"]]:
        assert 0 <= value <= math.log(256)
    metrics = json.loads((tiny_run.run_dir / METRICS_FILE).read_text())["test"]
    assert test_set["cross_entropy"] == pytest.approx(metrics["loss"], rel=1e-3)  # the same images as training scored
    assert report["accuracy"] == pytest.approx(metrics["accuracy"]) == pytest.approx(report["run_accuracy"])
    assert report["tsne_samples"] == TSNE_SAMPLES and report["figures"] == FIGURE_FILES


def test_the_reports_calibration_is_exports_on_the_same_logits(
    reported: tuple[Result, Path], tiny_run: RunResult
) -> None:
    _, out = reported
    measured = json.loads((out / REPORT_JSON).read_text())["confidence"]
    model, payload = load_model(tiny_run.run_dir / "best.pt", "cpu")
    test, val = (held_out(split, payload["train_config"]) for split in ("test", "val"))
    test_logits, val_logits = model_logits(model, test.glyphs, "cpu"), model_logits(model, val.glyphs, "cpu")
    temperature = calibration.fit_temperature(val_logits, val.targets)
    assert measured["fitted_on"] == val.source
    assert measured["after"]["temperature"] == pytest.approx(temperature, rel=1e-4)
    for key, t in (("before", 1.0), ("after", temperature)):
        probabilities = calibration.softmax(test_logits, t)
        assert measured[key]["ece"] == pytest.approx(calibration.ece(probabilities, test.targets), abs=1e-6)
        assert measured[key]["nll"] == pytest.approx(calibration.nll(probabilities, test.targets), rel=1e-4)
    confidence = calibration.softmax(val_logits, temperature).max(axis=1)
    chosen = calibration.choose_threshold(confidence, calibration.MIN_COVERAGE)
    assert measured["threshold"] == pytest.approx(math.floor(chosen * 1e4) / 1e4, abs=1e-4)  # export rounds down


def test_the_risk_coverage_table_is_monotone_and_holds_the_chosen_threshold(reported: tuple[Result, Path]) -> None:
    _, out = reported
    measured = json.loads((out / REPORT_JSON).read_text())["confidence"]
    table = measured["table"]
    thresholds = [row["threshold"] for row in table]
    assert thresholds == sorted({*TABLE_THRESHOLDS, measured["threshold"]})
    assert measured["at_threshold"] == table[thresholds.index(measured["threshold"])]
    answered, refused = [row["answered"] for row in table], [row["refused"] for row in table]
    assert answered[0] == 1.0 and all(a >= b for a, b in zip(answered, answered[1:]))  # fewer as it rises
    assert refused[0] == 0.0 and all(a <= b for a, b in zip(refused, refused[1:]))  # more as it rises
    assert measured["non_letters"] == NUM_CLASSES  # as many as the test letters (export's 500 at most)
    assert 0 < measured["validation_answered"] <= 1 and measured["min_coverage"] == calibration.MIN_COVERAGE


def test_report_json_is_strict_json(reported: tuple[Result, Path]) -> None:
    _, out = reported

    def refuse(constant: str) -> None:
        raise ValueError(f"report.json holds {constant}")

    json.loads((out / REPORT_JSON).read_text(), parse_constant=refuse)  # no NaN or Infinity


def test_report_html_embeds_every_figure_and_names_no_url(reported: tuple[Result, Path]) -> None:
    _, out = reported
    page = (out / REPORT_HTML).read_text()
    assert "http://" not in page and "https://" not in page
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert sorted(base64.b64decode(data) for data in embedded) == sorted(
        (out / name).read_bytes() for key, name in FIGURE_FILES.items() if key not in LINKED_FIGURES
    )
    linked = re.findall(r'(?:src|href)="(?!data:|#)([^"]*)"', page)
    assert linked == [FIGURE_FILES[key] for key in sorted(LINKED_FIGURES)] == ["kernels_conv1.png"]
    assert all((out / name).read_bytes().startswith(PNG_MAGIC) for name in linked)  # beside the page
    assert "nats" in page and "Kernels" in page and "t-SNE" in page and "<table>" in page


def test_report_md_shows_the_pngs_beside_it(reported: tuple[Result, Path]) -> None:
    _, out = reported
    markdown = (out / REPORT_MD).read_text()
    for name in FIGURE_FILES.values():
        assert f"]({name})" in markdown
    assert "| conv block 1 |" in markdown


def test_the_reference_column_says_where_its_numbers_come_from(reported: tuple[Result, Path]) -> None:
    _, out = reported
    report = json.loads((out / REPORT_JSON).read_text())
    assert report["reference"]["source"].startswith("issue 5 of lettercnn")
    markdown = (out / REPORT_MD).read_text()
    assert "| reference (issue 5) |" in markdown and "another letter set" in markdown
    assert "18.7 equally frequent letters" in markdown  # e^2.93: what its label entropy says of the set


def test_report_leaves_no_temporary_files(reported: tuple[Result, Path]) -> None:
    _, out = reported
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_the_default_test_image_is_the_middle_one_and_an_index_past_the_end_is_refused() -> None:
    assert [pick_index(None, count) for count in (1, 2, 26, 1040)] == [0, 1, 13, 520]
    assert pick_index(0, 1) == 0 and pick_index(25, 26) == 25
    with pytest.raises(
        ValueError, match=r"entropy_index 1390 is past the last of the 1040 test images; give 0\.\.1039"
    ):
        pick_index(1390, 1040, "entropy_index")


def test_report_with_an_index_past_the_test_set_is_one_clean_error(tiny_run: RunResult, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["report", "--checkpoint", str(tiny_run.run_dir), "--out", str(out), "--image-index", "3",
            "--entropy-index", str(NUM_CLASSES), "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: entropy_index {NUM_CLASSES} is past the last of the {NUM_CLASSES} test images; "
        f"give 0..{NUM_CLASSES - 1}, or leave it out for the middle one"
    )
    assert not out.exists()  # refused before anything is written


def test_report_goes_into_the_run_folder_by_default(tiny_run: RunResult) -> None:
    run = tiny_run.run_dir
    assert default_out_dir(run) == run / "report"
    assert default_out_dir(run / "best.pt") == run / "report"


def test_report_on_a_missing_checkpoint_is_one_clean_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--checkpoint", str(tmp_path / "nothing")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.strip().startswith("Error: ") and "nothing" in result.stderr


def test_report_of_a_checkpoint_that_does_not_say_its_data_asks_for_data(
    untrained_checkpoint: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["report", "--checkpoint", str(untrained_checkpoint), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: the checkpoint does not say what data it was trained on; pass --data DIR"


def test_report_of_another_architectures_weights_is_one_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    payload = checkpoint_payload(LetterCNN())
    payload["state_dict"].pop("fc2.bias")
    torch.save(payload, path)
    result = runner.invoke(app, ["report", "--checkpoint", str(path), "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.startswith("Error: ") and "another architecture" in result.stderr
