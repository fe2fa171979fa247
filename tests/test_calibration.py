"""Temperature scaling, ECE, NLL and the "?" threshold."""

from __future__ import annotations

import numpy as np
import pytest

from lettercnn import calibration


def test_ece_of_a_hand_computed_example():
    # Two bins in use: confidence 0.9 (right 1 of 2) and 0.6 (right 2 of 2).
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    targets = np.array([0, 1, 0, 0])
    expected = (2 * abs(0.5 - 0.9) + 2 * abs(1.0 - 0.6)) / 4
    assert calibration.ece(probabilities, targets) == pytest.approx(expected)


def test_nll_is_the_mean_minus_log_of_the_true_class():
    probabilities = np.array([[0.5, 0.5], [0.25, 0.75]])
    assert calibration.nll(probabilities, np.array([0, 1])) == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2)


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 10))
    truth = calibration.softmax(logits, 2.5)  # labels drawn as if the logits were 2.5x too sure
    targets = np.array([rng.choice(10, p=row) for row in truth])
    assert calibration.fit_temperature(logits, targets) == pytest.approx(2.5, rel=0.05)


def test_temperature_changes_no_answer_and_lowers_the_ece_of_an_overconfident_model():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, (5000, 26))
    targets = np.array([rng.choice(26, p=row) for row in calibration.softmax(logits, 3.0)])
    fitted = calibration.calibrate(logits, targets)
    assert fitted.temperature > 2
    assert fitted.ece_after < fitted.ece_before / 2 and fitted.nll_after < fitted.nll_before
    assert (calibration.softmax(logits, fitted.temperature).argmax(1) == logits.argmax(1)).all()


def test_the_threshold_keeps_the_asked_share_of_letters_and_reports_what_it_refuses():
    rng = np.random.default_rng(2)
    letters = rng.normal(0, 1, (1000, 26))
    letters[np.arange(1000), np.arange(1000) % 26] += 3.5  # mostly right, not always
    others = rng.normal(0, 0.5, (500, 26))  # flatter: no letter
    fitted = calibration.calibrate(letters, np.arange(1000) % 26, others, min_coverage=0.9)
    right = letters.argmax(1) == np.arange(1000) % 26
    assert fitted.coverage == pytest.approx(0.9, abs=0.01)
    assert fitted.accuracy_answered > right.mean()  # the refused letters were the unsure, often wrong ones
    assert fitted.refused > 0.8


def test_no_images_is_an_error_not_a_temperature():
    with pytest.raises(ValueError, match="no images"):
        calibration.fit_temperature(np.zeros((0, 26)), np.zeros(0, int))


def test_a_look_alike_pair_sure_together_is_answered_the_likelier_and_any_other_pair_is_not():
    labels = list("ABILO")
    pairs = calibration.look_alike_pairs(labels)
    assert pairs == ((2, 3),)  # I and L
    rows = np.array(
        [
            [0.02, 0.03, 0.40, 0.55, 0.00],  # a bar: L 0.55 and I 0.40 together 0.95
            [0.02, 0.03, 0.55, 0.40, 0.00],  # the same, leaning to I
            [0.40, 0.55, 0.02, 0.03, 0.00],  # A and B together as sure: no pair of look-alikes
            [0.00, 0.03, 0.55, 0.02, 0.40],  # I and O: not a pair
            [0.30, 0.05, 0.30, 0.35, 0.00],  # I and L (A as likely as I): 0.65 together, below 0.75
            [0.00, 0.00, 0.00, 0.80, 0.20],  # sure alone
            [0.00, 0.00, 0.00, 0.00, 0.00],  # no glyph
        ]
    )
    assert calibration.answered(rows, 0.75, pairs).tolist() == [True, True, False, False, False, True, False]
    assert calibration.answered(rows, 0.75).tolist() == [False, False, False, False, False, True, False]
    assert calibration.answered(rows, 0.0, pairs).all()  # threshold 0: everything, a row of zeros too
    assert calibration.answered(rows, 0.96, pairs).tolist() == [False] * 7
    # Each row's level: the highest threshold still answering it (the pair's sum for a bar).
    assert calibration.answer_level(rows, pairs) == pytest.approx([0.95, 0.95, 0.55, 0.55, 0.65, 0.80, 0.0])
    assert calibration.look_alike_pairs(list("ABC")) == ()
