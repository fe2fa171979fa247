"""Tests of lettercnn.quantize and `letters export --int8` / `recognize --int8`: static QDQ int8."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from lettercnn.cli import app
from lettercnn.data import SyntheticLetters
from lettercnn.data.imagetree import LabelledGlyphs
from lettercnn.errors import AccuracyDropError, ModelError
from lettercnn.metadata import META_TRAIN
from lettercnn.quantize import (
    META_QUANTIZATION,
    QuantReport,
    calibration_inputs,
    quantize_int8,
)
from lettercnn.runtime import DEFAULT_MODEL, Recognizer, choose_model, int8_path

REPO = Path(__file__).resolve().parents[1]
SHIPPED_RUN = REPO / "models" / "bn-dropout0"
SAMPLES = REPO / "samples" / "letters"
runner = CliRunner()


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, QuantReport]:
    """The shipped fp32 model quantised with the defaults (its own validation split)."""
    fp32 = tmp_path_factory.mktemp("models") / "letters.onnx"
    shutil.copyfile(DEFAULT_MODEL, fp32)
    return fp32, quantize_int8(fp32)


def few_letters(per_letter: int = 2) -> LabelledGlyphs:
    """A small labelled set: synthetic validation letters."""
    glyphs = SyntheticLetters(per_letter, seed=5, split="val")
    return LabelledGlyphs(glyphs.glyphs, glyphs.targets.copy(), "a few synthetic letters")


def test_int8_twin_is_written_beside_the_fp32_model_with_its_metadata(quantized: tuple[Path, QuantReport]) -> None:
    fp32, report = quantized
    assert report.file == fp32.with_name("letters.int8.onnx") == int8_path(fp32)
    props = {p.key: p.value for p in onnx.load(report.file).metadata_props}
    fp32_props = {p.key: p.value for p in onnx.load(fp32).metadata_props}
    assert {key: props[key] for key in fp32_props} == fp32_props  # labels, input, train... carried over
    method = json.loads(props[META_QUANTIZATION])
    assert method["format"] == "QDQ" and method["weights"] == "int8 per channel"
    assert report.int8_size < 0.3 * report.fp32_size
    assert Recognizer(report.file).labels == Recognizer(fp32).labels


def test_int8_graph_is_qdq_with_per_channel_weights_and_an_fp32_first_conv(quantized: tuple[Path, QuantReport]) -> None:
    graph = onnx.load(quantized[1].file).graph
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {init.name: init for init in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    assert len(convs) == 5
    first, *rest = convs
    assert first.input[1] in initializers and initializers[first.input[1]].data_type == onnx.TensorProto.FLOAT
    for conv in rest:
        dequantize = producers[conv.input[1]]
        assert dequantize.op_type == "DequantizeLinear"
        scale = onnx.numpy_helper.to_array(initializers[dequantize.input[1]])
        assert scale.shape == (onnx.numpy_helper.to_array(initializers[dequantize.input[0]]).shape[0],)  # per channel
        assert producers[conv.input[0]].op_type == "DequantizeLinear"  # activations quantised too


def test_int8_keeps_accuracy_on_the_models_own_validation_split(quantized: tuple[Path, QuantReport]) -> None:
    report = quantized[1]
    config = json.loads((SHIPPED_RUN / "config.json").read_text())
    per_letter = json.loads((SHIPPED_RUN / "metrics.json").read_text())["sizes"]["val"] // 26
    assert report.validation.startswith(
        f"the run's synthetic validation split ({per_letter} per letter, seed {config['seed']})"
    )
    assert report.val_images == 26 * per_letter
    # Rebuilt from the metadata, the run's validation split is the one its recorded
    # accuracy scored (torch then, onnxruntime now: a few images apart at most).
    props = {p.key: p.value for p in onnx.load(quantized[0]).metadata_props}
    recorded = json.loads(props[META_TRAIN])["val_accuracy"]
    assert report.fp32_accuracy == pytest.approx(recorded, abs=0.002)
    assert report.drop_points <= 0.5
    assert report.agreement >= 0.98
    assert (
        f"synthetic letters (12 per letter, seed {config['seed'] + 1})" in report.calibration
    )  # not the validation seed


def test_too_large_an_accuracy_drop_is_refused_and_nothing_written(tmp_path: Path) -> None:
    fp32 = tmp_path / "m.onnx"
    shutil.copyfile(DEFAULT_MODEL, fp32)
    with pytest.raises(AccuracyDropError, match="int8 model refused: accuracy .* nothing written") as refused:
        quantize_int8(fp32, validation=few_letters(), max_drop=-100.0)
    assert refused.value.report.val_images == 52
    assert not int8_path(fp32).exists()


def test_a_model_without_our_metadata_or_already_quantised_is_refused(
    tmp_path: Path, quantized: tuple[Path, QuantReport]
) -> None:
    bare = onnx.load(DEFAULT_MODEL)
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    with pytest.raises(ValueError, match="has no lettercnn metadata"):
        quantize_int8(tmp_path / "bare.onnx")
    with pytest.raises(ValueError, match="already quantised"):
        quantize_int8(quantized[1].file, tmp_path / "twice.onnx")
    (tmp_path / "text.onnx").write_text("not a model")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        quantize_int8(tmp_path / "text.onnx")
    with pytest.raises(FileNotFoundError, match="model not found"):
        quantize_int8(tmp_path / "missing.onnx")


def test_calibration_folder_is_read_recursively_and_skips_bad_files(tmp_path: Path) -> None:
    folder = tmp_path / "calib" / "deep"
    folder.mkdir(parents=True)
    for name in ("A.png", "B.png", "C.jpg"):
        shutil.copyfile(next(SAMPLES.glob("*.png")), folder / name)
    (folder / "broken.png").write_bytes(b"")
    inputs, source = calibration_inputs(tmp_path / "calib", {})
    assert inputs.shape == (3, 1, 32, 32) and inputs.dtype == np.float32
    assert source == f"{tmp_path / 'calib'}, 1 unreadable skipped"


def test_calibration_folder_without_images_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no readable image in calibration folder"):
        calibration_inputs(tmp_path, {})
    with pytest.raises(FileNotFoundError, match="calibration folder not found"):
        calibration_inputs(tmp_path / "nowhere", {})


def test_choose_model_picks_the_int8_twin_or_says_how_to_make_it(tmp_path: Path) -> None:
    assert choose_model(None, int8=False) == DEFAULT_MODEL
    assert choose_model(None, int8=True) == int8_path(DEFAULT_MODEL)  # shipped beside the fp32 model
    shutil.copyfile(DEFAULT_MODEL, tmp_path / "m.onnx")
    with pytest.raises(ModelError, match=r"no int8 model beside .*m\.onnx: .*m\.int8\.onnx not found; make it with"):
        choose_model(tmp_path / "m.onnx", int8=True)


def test_recognize_int8_reads_every_sample_like_fp32() -> None:
    fp32 = runner.invoke(app, ["recognize", str(SAMPLES), "--json"])
    int8 = runner.invoke(app, ["recognize", str(SAMPLES), "--json", "--int8"])
    assert fp32.exit_code == int8.exit_code == 0, int8.output
    answers = [[json.loads(line)["letter"] for line in out.output.splitlines()] for out in (fp32, int8)]
    assert answers[0] == answers[1]
    assert [Path(json.loads(line)["path"]).name[0].upper() for line in int8.output.splitlines()] == answers[1]


def test_recognize_int8_without_a_twin_is_one_error_line(tmp_path: Path) -> None:
    shutil.copyfile(DEFAULT_MODEL, tmp_path / "m.onnx")
    result = runner.invoke(
        app, ["recognize", str(next(SAMPLES.glob("*.png"))), "--model", str(tmp_path / "m.onnx"), "--int8"]
    )
    assert result.exit_code == 1
    assert "Error: no int8 model beside" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_export_int8_writes_both_models_and_compares_them(tmp_path: Path) -> None:
    out = tmp_path / "letters.onnx"
    result = runner.invoke(app, ["export", str(out), "--checkpoint", str(SHIPPED_RUN), "--int8"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and int8_path(out).is_file()
    validation = json.loads((SHIPPED_RUN / "metrics.json").read_text())["sizes"]["val"]
    assert f"fp32 vs int8 on {validation} validation images" in result.output
    assert Recognizer(int8_path(out)).predict(str(next(SAMPLES.glob("A_*.png")))).letter == "A"


def test_calib_without_int8_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "m.onnx"), "--checkpoint", str(SHIPPED_RUN),
                                 "--calib", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 1
    assert "Error: --calib calibrates the int8 model; add --int8" in result.output
    assert not (tmp_path / "m.onnx").exists()
