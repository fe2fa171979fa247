"""Export: a plain graph, parity with the training model, metadata, dynamic batch, refusals.

The model is untrained but its BatchNorm statistics and affine terms are random, so
a BN fold that is wrong (or skipped) changes the logits far beyond the tolerance.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from lettercnn import __version__, export
from lettercnn.errors import ExportError, LetterError, ParityError
from lettercnn.export import DEFAULT_ATOL, Parity, export_onnx
from lettercnn.labels import LETTERS
from lettercnn.metadata import META_CALIBRATION, METADATA_KEYS, read_metadata
from lettercnn.nn.checkpoint import checkpoint_payload
from lettercnn.nn.model import LetterCNN
from lettercnn.preprocess import DEFAULT_SPEC, InputSpec

TEST_ACCURACY = 0.9731
VAL_ACCURACY = 0.9712
# Caller-given parity inputs for the exports that are not about the default inputs.
FEW = 64
# Rendered parity inputs of the main export: fewer than the default 256 because the
# img2col reference costs ~30 ms an image on 2 cores; more than 64 so "all" differs.
RENDERED = 128


def _randomised_model(seed: int) -> LetterCNN:
    """An untrained LetterCNN with dropout and random BN statistics and affine terms."""
    torch.manual_seed(seed)
    model = LetterCNN(dropout=0.3)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.running_mean.normal_(0.0, 0.5)
                module.running_var.uniform_(0.25, 4.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.2)
    return model.eval()


def _save_checkpoint(path: Path, seed: int = 0, **extra: object) -> Path:
    """A checkpoint of :func:`_randomised_model` with ``extra`` keys; a key given as None is left out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**checkpoint_payload(_randomised_model(seed)), **extra}
    torch.save({key: value for key, value in payload.items() if value is not None}, path)
    return path


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def few_inputs() -> np.ndarray:
    return export.render_parity_inputs(FEW, seed=1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, export.ExportReport]:
    """One default export from a run folder with config.json and metrics.json."""
    run = tmp_path_factory.mktemp("runs") / "bn-dropout0.3"
    checkpoint = _save_checkpoint(run / "best.pt", labels=list(LETTERS), epoch=7)
    (run / "config.json").write_text(json.dumps({"epochs": 7, "dropout": 0.3}))
    metrics = {"test": {"accuracy": TEST_ACCURACY, "count": 1560}, "best_val_accuracy": VAL_ACCURACY}
    (run / "metrics.json").write_text(json.dumps(metrics))
    report = export_onnx(run, run.parent / "out" / "letters.onnx", parity_samples=RENDERED)
    return checkpoint, report


@pytest.fixture(scope="module")
def few_logits(exported, few_inputs) -> np.ndarray:
    """The training model's logits for ``few_inputs``, rebuilt independently of export."""
    checkpoint, _ = exported
    model = LetterCNN.from_checkpoint(checkpoint)
    with torch.inference_mode():
        return model(torch.from_numpy(few_inputs)).numpy()


def test_graph_is_plain_conv_with_bn_and_dropout_gone(exported):
    _, report = exported
    model = onnx.load(report.file)
    counts = Counter(node.op_type for node in model.graph.node)
    assert counts["Conv"] == 5
    for op in ("Unfold", "Gather", "BatchNormalization", "Dropout"):
        assert counts[op] == 0, op
    assert report.op_counts == dict(counts)


def test_file_is_self_contained_and_readable_by_older_runtimes(exported):
    _, report = exported
    model = onnx.load(report.file, load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert sorted(p.name for p in report.file.parent.iterdir()) == ["letters.onnx"]  # no data file, no temp
    assert report.size_bytes == report.file.stat().st_size
    assert [(o.domain, o.version) for o in model.opset_import] == [("", export.DEFAULT_OPSET)]
    assert model.ir_version <= 9 and report.ir_version == model.ir_version
    onnx.checker.check_model(model, full_check=True)


def test_onnxruntime_matches_the_training_model_at_batch_1_and_64(exported, few_inputs, few_logits):
    _, report = exported
    assert [(p.name, p.samples) for p in report.parity] == [("batch 1", 1), ("batch 64", 64), ("all", RENDERED)]
    assert all(p.top1_agreement == 1.0 and p.max_abs_diff <= DEFAULT_ATOL for p in report.parity)
    session, want = _session(report.file), few_logits
    for batch in (few_inputs[:1], few_inputs):
        (got,) = session.run(None, {export.INPUT_NAME: batch})
        np.testing.assert_allclose(got, want[: len(batch)], rtol=0, atol=DEFAULT_ATOL)
        assert (got.argmax(1) == want[: len(batch)].argmax(1)).all()


def test_batch_dimension_is_dynamic(exported, few_inputs, few_logits):
    _, report = exported
    session = _session(report.file)
    assert isinstance(session.get_inputs()[0].shape[0], str)
    for batch in (1, 3, 64):
        (got,) = session.run(None, {export.INPUT_NAME: few_inputs[:batch]})
        assert got.shape == (batch, len(LETTERS))
        np.testing.assert_allclose(got, few_logits[:batch], rtol=0, atol=DEFAULT_ATOL)


def test_metadata_round_trips_through_onnxruntime(exported):
    _, report = exported
    meta = _session(report.file).get_modelmeta()
    decoded = {key: json.loads(value) for key, value in meta.custom_metadata_map.items()}
    assert sorted(decoded) == sorted(set(METADATA_KEYS) - {META_CALIBRATION})  # a checkpoint without its data
    assert decoded["labels"] == list(LETTERS)
    assert decoded["input"] == DEFAULT_SPEC.to_dict()
    assert decoded["lettercnn_version"] == __version__
    assert decoded["opset"] == report.opset
    train = decoded["train"]
    assert train["model"] == {"num_classes": 26, "batch_norm": True, "dropout": 0.3, "conv": "img2col"}
    assert train["config"] == {"epochs": 7, "dropout": 0.3}
    assert (train["test_accuracy"], train["val_accuracy"], train["epoch"]) == (TEST_ACCURACY, VAL_ACCURACY, 7)
    assert meta.producer_name == "lettercnn"
    assert read_metadata(report.file) == decoded


def test_opset_17_from_a_bare_checkpoint_without_run_files(tmp_path, few_inputs, monkeypatch):
    references = []
    real_reference = export._reference_logits

    def spy(model: LetterCNN, samples: np.ndarray) -> np.ndarray:
        references.append(model.config.conv)
        return real_reference(model, samples)

    monkeypatch.setattr(export, "_reference_logits", spy)
    checkpoint = _save_checkpoint(tmp_path / "model.pt", seed=2, input_spec=None)  # written before specs were
    report = export_onnx(checkpoint, tmp_path / "m17.onnx", opset=17, inputs=few_inputs)
    assert references == ["img2col"]  # parity is against the training model
    model = onnx.load(report.file)
    assert report.opset == 17 and [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert report.parity[-1].samples == FEW
    train = read_metadata(report.file)["train"]
    assert "test_accuracy" not in train and "config" not in train
    assert read_metadata(report.file)["input"] == DEFAULT_SPEC.to_dict()  # no input_spec: the default
    assert _session(report.file).run(None, {export.INPUT_NAME: few_inputs[:2]})[0].shape == (2, 26)


def test_the_metadata_says_the_input_spec_the_checkpoint_trained_with(tmp_path, few_inputs):
    spec = dataclasses.replace(DEFAULT_SPEC, margin=3, mean=0.4)
    checkpoint = _save_checkpoint(tmp_path / "model.pt", seed=3, input_spec=spec.to_dict())
    report = export_onnx(checkpoint, tmp_path / "m.onnx", inputs=few_inputs)
    assert read_metadata(report.file)["input"] == spec.to_dict()


def test_parity_failure_writes_nothing_and_keeps_the_old_file(tmp_path, few_inputs, monkeypatch):
    # An exporter that gets one weight wrong: only a gate that compares with the
    # training model (not with the model it exported) can notice.
    real_to_onnx = export._to_onnx

    def wrong_to_onnx(model: LetterCNN, opset: int, spec: InputSpec) -> onnx.ModelProto:
        with torch.no_grad():
            model.fc2.bias[0] += 10 * DEFAULT_ATOL
        return real_to_onnx(model, opset, spec)

    monkeypatch.setattr(export, "_to_onnx", wrong_to_onnx)
    checkpoint = _save_checkpoint(tmp_path / "model.pt")
    out = tmp_path / "out" / "letters.onnx"
    out.parent.mkdir()
    out.write_bytes(b"previous model")
    assert issubclass(ParityError, LetterError)  # the CLI reports it as "Error: ..."
    with pytest.raises(ParityError, match=r"batch 1 \(1\): max \|dlogit\| 1\.0\de-03") as caught:
        export_onnx(checkpoint, out, inputs=few_inputs)
    assert all(p.max_abs_diff > DEFAULT_ATOL for p in caught.value.parity)
    assert out.read_bytes() == b"previous model"
    assert sorted(p.name for p in out.parent.iterdir()) == ["letters.onnx"]


def test_parity_fails_on_a_top1_change_even_within_tolerance():
    assert Parity("all", 256, 0.0, 1.0).passed(DEFAULT_ATOL)
    assert not Parity("all", 256, 1e-6, 255 / 256).passed(DEFAULT_ATOL)
    assert not Parity("all", 256, 2 * DEFAULT_ATOL, 1.0).passed(DEFAULT_ATOL)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.pt"):
        export_onnx(tmp_path / "nothing.pt", tmp_path / "m.onnx")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        export_onnx(tmp_path, tmp_path / "m.onnx")


@pytest.mark.parametrize("content", [b"not a checkpoint", None])
def test_foreign_file_is_a_value_error(tmp_path, content):
    foreign = tmp_path / "foreign.pt"
    if content is None:
        torch.save({"weights": torch.zeros(3)}, foreign)  # a torch file, but not ours
    else:
        foreign.write_bytes(content)
    with pytest.raises(ValueError, match=r"foreign\.pt"):
        export_onnx(foreign, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_mismatched_state_dict_is_a_value_error(tmp_path):
    payload = checkpoint_payload(LetterCNN())
    payload["model_config"]["batch_norm"] = False
    torch.save(payload, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="holds the weights of another architecture"):
        export_onnx(tmp_path / "model.pt", tmp_path / "m.onnx")


@pytest.mark.parametrize("out", ["folder", "model.pt", "model"])
def test_out_must_be_an_onnx_file(tmp_path, out):
    (tmp_path / "folder").mkdir()
    checkpoint = tmp_path / "missing-but-never-read.pt"
    with pytest.raises(ValueError, match=r"folder|must end in \.onnx"):
        export_onnx(checkpoint, tmp_path / out)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"opset": 13}, "opset must be an integer in 17"),
        ({"parity_samples": 10}, "parity_samples must be an integer >= 64"),
        ({"atol": -1.0}, "atol must be"),
        ({"inputs": np.zeros((64, 32, 32), np.float32)}, r"inputs must have shape \(N, 1, 32, 32\)"),
        ({"inputs": np.zeros((63, 1, 32, 32), np.float32)}, "at least 64"),
        ({"inputs": np.full((64, 1, 32, 32), np.nan, np.float32)}, "NaN"),
    ],
)
def test_bad_options_are_refused_before_any_work(tmp_path, options, message):
    checkpoint = _save_checkpoint(tmp_path / "model.pt")
    with pytest.raises(ValueError, match=message):
        export_onnx(checkpoint, tmp_path / "m.onnx", **options)
    assert not (tmp_path / "m.onnx").exists()


def test_graph_check_refuses_batch_norm_nodes(exported):
    _, report = exported
    model = onnx.load(report.file)
    model.graph.node.append(onnx.helper.make_node("BatchNormalization", ["a", "s", "b", "m", "v"], ["y"]))
    with pytest.raises(ExportError, match="BatchNormalization"):
        export._check_plain(model, LetterCNN(conv="torch"), report.opset)


def test_read_metadata_refuses_a_file_that_is_not_onnx(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\xff\xfe not protobuf at all " * 4)
    with pytest.raises(ValueError, match=r"junk\.onnx"):
        read_metadata(tmp_path / "junk.onnx")
    with pytest.raises(FileNotFoundError, match=r"absent\.onnx"):
        read_metadata(tmp_path / "absent.onnx")


def test_default_parity_inputs_are_rendered_letters_the_same_every_time():
    first = export.render_parity_inputs()
    assert first.shape == (export.DEFAULT_PARITY_SAMPLES, 1, 32, 32) and first.dtype == np.float32
    assert np.isfinite(first).all()
    background, ink = -DEFAULT_SPEC.mean / DEFAULT_SPEC.std, (1 - DEFAULT_SPEC.mean) / DEFAULT_SPEC.std
    assert (first.max(axis=(1, 2, 3)) > 0.5 * ink).all()  # every image holds a glyph (thin pens blur at 32x32)
    border = np.concatenate([first[:, 0, [0, -1], :].ravel(), first[:, 0, :, [0, -1]].ravel()])
    np.testing.assert_allclose(border, background)  # white on black, inside the margin
    np.testing.assert_array_equal(export.render_parity_inputs(), first)


def test_an_export_without_training_data_says_why_it_is_not_calibrated(exported):
    _, report = exported
    assert report.calibration is None and "does not say what data it trained on" in report.calibration_note


def test_a_run_exports_with_a_temperature_and_threshold_the_runtime_applies(tiny_model, few_inputs):
    from lettercnn import calibration
    from lettercnn.runtime import Recognizer, logits

    fitted = read_metadata(tiny_model)[META_CALIBRATION]
    assert fitted["temperature"] > 0 and 0.0 <= fitted["min_confidence"] <= 1.0
    # The temperature minimises the NLL over a range that holds T = 1; the ECE of a tiny
    # model's few letters may go either way, so it is only reported.
    assert fitted["nll_after"] <= fitted["nll_before"] + 1e-9 and "validation split" in fitted["source"]
    assert 0.0 <= fitted["ece_after"] <= 1.0 and 0.0 <= fitted["ece_before"] <= 1.0
    recognizer = Recognizer(tiny_model)
    assert recognizer.temperature == pytest.approx(fitted["temperature"])
    assert recognizer.min_confidence == pytest.approx(fitted["min_confidence"])
    raw = logits(recognizer.session, few_inputs)
    np.testing.assert_allclose(
        recognizer.probabilities(few_inputs), calibration.softmax(raw, fitted["temperature"]), rtol=1e-5, atol=1e-6
    )
