"""The torch-free runtime: Recognizer over an exported model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from lettercnn import preprocess
from lettercnn.errors import ModelError
from lettercnn.labels import LETTERS
from lettercnn.runtime import DEFAULT_MODEL, NO_GLYPH, Prediction, Recognizer, logits, open_session


@pytest.fixture(scope="module")
def model_and_reference(tiny_model, tiny_run):
    """The tiny run's exported model, and the trained torch model it came from."""
    from lettercnn.nn.model import LetterCNN

    return tiny_model, LetterCNN.from_checkpoint(tiny_run.run_dir)


def letter_image(text: str = "K") -> np.ndarray:
    image = np.full((96, 80), 235, np.uint8)
    cv2.putText(image, text, (10, 80), cv2.FONT_HERSHEY_SIMPLEX, 2.6, 20, 7, cv2.LINE_AA)
    return image


def test_probabilities_are_the_softmax_of_the_training_models_logits_over_the_temperature(model_and_reference):
    import torch

    path, model = model_and_reference
    recognizer = Recognizer(path, threads=1)
    assert recognizer.calibrated and recognizer.temperature > 0  # export fitted it on the run's validation split
    inputs = np.stack([preprocess.to_input(letter_image(c)) for c in "ABCDE"])
    with torch.inference_mode():
        expected = torch.softmax(model(torch.from_numpy(inputs)) / recognizer.temperature, dim=1).numpy()
    np.testing.assert_allclose(recognizer.probabilities(inputs), expected, atol=1e-5)


def test_reads_labels_and_input_spec_from_metadata(model_and_reference):
    recognizer = Recognizer(model_and_reference[0])
    assert recognizer.labels == list(LETTERS)
    assert recognizer.spec == preprocess.DEFAULT_SPEC


def test_predict_one_image_gives_a_prediction_with_sorted_top_k(model_and_reference):
    recognizer = Recognizer(model_and_reference[0])
    prediction = recognizer.predict(letter_image(), top_k=4)
    assert isinstance(prediction, Prediction)
    assert len(prediction.top_k) == 4
    assert prediction.top_k[0] == (prediction.letter, prediction.confidence)
    probabilities = [p for _, p in prediction.top_k]
    assert probabilities == sorted(probabilities, reverse=True)


def test_predict_a_list_of_paths_and_arrays_gives_one_prediction_each(model_and_reference, tmp_path):
    path = tmp_path / "k.png"
    cv2.imwrite(str(path), letter_image())
    recognizer = Recognizer(model_and_reference[0])
    from_path, from_array = recognizer.predict([path, letter_image()])
    assert from_path == from_array
    assert recognizer.spent.images == 2


def test_below_min_confidence_the_answer_is_a_question_mark(model_and_reference):
    recognizer = Recognizer(model_and_reference[0])
    prediction = recognizer.predict(letter_image(), min_confidence=1.01)
    assert prediction.letter == "?"
    assert prediction.top_k[0][0] in LETTERS


def test_a_plain_bar_is_answered_the_likelier_of_i_and_l_not_a_question_mark():
    recognizer = Recognizer()  # the shipped model: a bar is I or l, about even
    page = np.full((160, 200), 255, np.uint8)
    cv2.line(page, (100, 20), (100, 140), 0, 10, cv2.LINE_AA)
    prediction = recognizer.predict(page, top_k=2)
    (first, p_first), (second, p_second) = prediction.top_k
    assert {first, second} == {"I", "L"} and p_first < recognizer.min_confidence <= p_first + p_second
    assert prediction == Prediction(first, p_first, prediction.top_k)  # a letter: its own probability, no reason
    rows = np.full((2, len(LETTERS)), 0.01)
    rows[:, LETTERS.index("K")] = 0.9, 0.5
    rows[1, LETTERS.index("X")] = 0.45  # K and X together as sure as the bar: not look-alikes
    assert [p.letter for p in recognizer.decide(rows, top_k=1)] == ["K", "?"]


def test_missing_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="model not found"):
        Recognizer(tmp_path / "nope.onnx")


def test_foreign_file_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    with pytest.raises(ModelError, match="not a model onnxruntime can load"):
        Recognizer(bad)


def test_model_without_metadata_is_refused_unless_letters_are_assumed(model_and_reference, tmp_path):
    proto = onnx.load(model_and_reference[0])
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, bare)
    with pytest.raises(ModelError, match="no lettercnn metadata"):
        Recognizer(bare)
    assert Recognizer(bare, assume_letters=True).labels == list(LETTERS)


def test_importing_the_runtime_loads_no_torch():
    code = "import sys, lettercnn.runtime, lettercnn.preprocess; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_base_install_without_torch_recognizes_with_the_shipped_model(tmp_path):
    """`pip install lettercnn` (no extras) into a fresh venv: no torch, and recognize works."""
    import venv

    root = Path(__file__).resolve().parents[1]
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", str(root)], check=True, timeout=600)
    has_torch = subprocess.run([python, "-c", "import torch"], capture_output=True)
    assert has_torch.returncode != 0, "the base install pulled in torch"
    image = tmp_path / "R.png"
    cv2.imwrite(str(image), letter_image("R"))
    result = subprocess.run(
        [env_dir / "bin" / "letters", "recognize", str(image), "--json"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert '"letter": "R"' in result.stdout


def test_a_blank_image_reads_as_a_question_mark_with_confidence_0():
    recognizer = Recognizer()  # the shipped model: any model would guess some letter on a blank
    blank, white, letter = np.zeros((50, 50), np.uint8), np.full((50, 50), 255, np.uint8), letter_image("K")
    answers = recognizer.predict([blank, letter, white], top_k=3)
    assert [a.letter for a in answers] == ["?", "K", "?"]
    assert answers[0] == Prediction("?", 0.0, [], NO_GLYPH) == answers[2]
    assert len(answers[1].top_k) == 3 and answers[1].reason is None
    assert answers[0].to_dict()["reason"] == NO_GLYPH and "reason" not in answers[1].to_dict()


def test_top_k_below_1_is_refused_and_above_the_classes_lists_them_all():
    recognizer = Recognizer()
    with pytest.raises(ValueError, match="--top-k must be at least 1"):
        recognizer.predict(letter_image(), top_k=0)
    assert len(recognizer.predict(letter_image(), top_k=99).top_k) == len(LETTERS)


def test_open_session_reads_a_file_or_its_bytes_and_logits_run_in_batches(model_and_reference):
    path, _ = model_and_reference
    inputs = np.stack([preprocess.to_input(letter_image(c)) for c in "ABCDEFG"])
    whole = logits(open_session(path, threads=1), inputs)
    in_pairs = logits(open_session(path.read_bytes()), inputs, batch=2)
    assert whole.shape == (7, len(LETTERS))
    np.testing.assert_allclose(in_pairs, whole, atol=1e-5)
    assert logits(open_session(path), inputs[:0]).shape == (0, len(LETTERS))


def test_open_session_turns_onnxruntime_errors_into_model_errors(tmp_path):
    with pytest.raises(ModelError, match="model not found"):
        open_session(tmp_path / "nowhere.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelError, match="the file is empty"):
        open_session(tmp_path / "empty.onnx")
    with pytest.raises(ModelError, match="not a model onnxruntime can load"):
        open_session(b"not a model")
    with pytest.raises(ValueError, match="threads must be >= 1"):
        open_session(DEFAULT_MODEL, threads=0)
