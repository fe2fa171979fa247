"""The training loss: cross-entropy on letters, outlier exposure on images of no letter."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lettercnn.labels import NOT_A_LETTER
from lettercnn.nn.losses import letter_loss


def test_on_letters_alone_it_is_the_cross_entropy():
    logits, targets = torch.randn(8, 26), torch.randint(0, 26, (8,))
    assert letter_loss(logits, targets) == pytest.approx(F.cross_entropy(logits, targets).item())


def test_a_uniform_answer_on_a_non_letter_costs_nothing():
    targets = torch.full((4,), NOT_A_LETTER)
    assert letter_loss(torch.zeros(4, 26), targets).item() == pytest.approx(0.0, abs=1e-6)
    assert letter_loss(torch.full((4, 26), 3.0), targets).item() == pytest.approx(0.0, abs=1e-6)


def test_a_confident_answer_on_a_non_letter_costs_the_cross_entropy_from_uniform():
    logits = torch.zeros(1, 26)
    logits[0, 3] = 10.0  # sure it is a D
    expected = torch.logsumexp(logits, 1) - logits.mean(1) - math.log(26)
    assert letter_loss(logits, torch.tensor([NOT_A_LETTER]), outlier_weight=1.0) == pytest.approx(expected.item())
    assert letter_loss(logits, torch.tensor([NOT_A_LETTER]), outlier_weight=0.0).item() == 0.0


def test_a_mixed_batch_adds_the_weighted_outlier_term_and_its_gradient_flattens():
    logits = torch.randn(6, 26, requires_grad=True)
    targets = torch.tensor([1, 2, 3, NOT_A_LETTER, NOT_A_LETTER, 5])
    letters = targets >= 0
    outliers = logits[~letters]
    expected = (
        F.cross_entropy(logits[letters], targets[letters])
        + 0.5 * (torch.logsumexp(outliers, 1) - outliers.mean(1) - math.log(26)).mean()
    )
    loss = letter_loss(logits, targets)
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    grad = logits.grad[3]  # a non-letter's row: the top logit is pushed down
    assert grad[logits[3].argmax()] > 0
