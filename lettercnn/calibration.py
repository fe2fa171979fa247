"""Calibrated confidence and the "?" threshold (numpy only: the runtime side may use it).

A network's softmax is not a probability until it is calibrated: trained to the
last percent, it says 0.99 where it is right 0.95 of the time. Temperature scaling
(Guo, Pleiss, Sun and Weinberger, 2017) divides the logits by one number ``T``,
fitted on held-out letters to minimise their negative log-likelihood; it changes no
answer, only how sure each one is. ``letters export`` fits it on the run's validation
split and writes it into the model's metadata, so every runtime (fp32, int8, camera,
browser) applies the same.

The "?" threshold (``--min-confidence``) is then read off a risk-coverage curve: how
many letters are still answered, how many of those are right, and how many images of
no letter are refused, as the threshold rises (:func:`risk_coverage`,
:func:`choose_threshold`). What the threshold does to one answer is :func:`answered`,
which every runtime follows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lettercnn.labels import LOOK_ALIKES

# Bins of the expected calibration error, as in Guo et al.
ECE_BINS = 15
# Temperatures searched, log-spaced: a model is rarely off by more than 10x either way.
TEMPERATURE_RANGE = (0.1, 10.0)
# The default threshold keeps at least this share of the held-out letters answered.
MIN_COVERAGE = 0.97


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``, float64 (n, classes)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def look_alike_pairs(labels: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """The indices of :data:`lettercnn.labels.LOOK_ALIKES` among ``labels`` (pairs it lacks left out)."""
    return tuple((labels.index(a), labels.index(b)) for a, b in LOOK_ALIKES if a in labels and b in labels)


def answered(probabilities: np.ndarray, threshold: float, pairs: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Which rows of ``probabilities`` (n, classes) are answered with their most likely
    letter at ``threshold``, not "?".

    A row is answered when its top probability reaches the threshold, or when its two
    most likely classes are one of the look-alike ``pairs`` (:func:`look_alike_pairs`)
    and reach it together: the shape is surely one of the two (a plain bar: I or l),
    and the answer is the likelier of them, with its own probability as confidence.
    A row of zeros (no glyph) is answered only at threshold 0.
    """
    return answer_level(probabilities, pairs) >= threshold


def answer_level(probabilities: np.ndarray, pairs: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Per row of ``probabilities`` (n, classes), the highest threshold at which it is
    still :func:`answered`: its top probability, or, where its two most likely classes
    are one of the look-alike ``pairs``, the two together. Computed once, it answers
    every threshold of a curve by one comparison."""
    probabilities = np.asarray(probabilities)
    top = probabilities.max(axis=1)
    if not pairs:
        return top
    top_two = np.argsort(probabilities, axis=1, kind="stable")[:, -2:]
    together = np.take_along_axis(probabilities, top_two, axis=1).sum(axis=1)
    first, second = top_two.min(axis=1), top_two.max(axis=1)
    alike = np.zeros(len(probabilities), bool)
    for a, b in pairs:
        alike |= (first == min(a, b)) & (second == max(a, b))
    return np.where(alike, together, top)


def nll(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes (nats)."""
    picked = probabilities[np.arange(len(targets)), targets]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean()) if len(targets) else float("nan")


def ece(probabilities: np.ndarray, targets: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top answer: the count-weighted mean, over
    equal-width confidence bins, of |accuracy - mean confidence|."""
    if not len(targets):
        return float("nan")
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == targets
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)  # (k/bins, (k+1)/bins]
    total = 0.0
    for b in range(bins):
        mine = index == b
        if mine.any():
            total += mine.sum() * abs(float(right[mine].mean()) - float(confidence[mine].mean()))
    return total / len(targets)


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises the NLL of ``targets`` (golden-section search on log T).

    Raises:
        ValueError: no logits to fit on.
    """
    if not len(targets):
        raise ValueError("cannot fit a temperature on no images")
    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    ratio = (math.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return nll(softmax(logits, math.exp(log_t)), targets)

    a, b = low + (1 - ratio) * (high - low), low + ratio * (high - low)
    fa, fb = loss(a), loss(b)
    for _ in range(60):  # ~1e-12 of the bracket: far below what matters
        if fa < fb:
            high, b, fb = b, a, fa
            a = low + (1 - ratio) * (high - low)
            fa = loss(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = loss(b)
    return float(math.exp((low + high) / 2))


@dataclass(frozen=True)
class Calibration:
    """What ``letters export`` writes into the metadata under ``calibration``.

    Attributes:
        temperature: the logits are divided by it before the softmax.
        min_confidence: the default threshold: a top probability below it is "?".
        ece_before, ece_after: ECE of the held-out letters at T = 1 and at ``temperature``.
        nll_before, nll_after: their NLL, likewise.
        coverage: share of the held-out letters answered at ``min_confidence``.
        accuracy_answered: right among those answered.
        refused: share of the held-out non-letters answered "?" (NaN without any).
        source: what it was fitted on.
    """

    temperature: float
    min_confidence: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    coverage: float
    accuracy_answered: float
    refused: float
    source: str

    def to_dict(self) -> dict[str, object]:
        return {key: (round(value, 6) if isinstance(value, float) else value) for key, value in self.__dict__.items()}


def risk_coverage(
    letter_probabilities: np.ndarray,
    letter_right: np.ndarray,
    other_probabilities: np.ndarray,
    thresholds: np.ndarray,
    pairs: Sequence[tuple[int, int]] = (),
) -> list[tuple[float, float, float, float]]:
    """Per threshold: (threshold, letters answered, right among answered, non-letters
    refused), answered as the runtime answers (:func:`answered`, with the look-alike ``pairs``).

    Args:
        letter_probabilities: (n, classes) of held-out letters; ``letter_right`` whether
            each one's most likely class is right.
        other_probabilities: (m, classes) of images of no letter (m may be 0).
    """
    rows = []
    letter_levels, other_levels = answer_level(letter_probabilities, pairs), answer_level(other_probabilities, pairs)
    for threshold in thresholds:
        letters = letter_levels >= threshold
        coverage = float(letters.mean()) if len(letters) else float("nan")
        accuracy = float(letter_right[letters].mean()) if letters.any() else float("nan")
        others = other_levels >= threshold
        refused = float((~others).mean()) if len(others) else float("nan")
        rows.append((float(threshold), coverage, accuracy, refused))
    return rows


def choose_threshold(letter_confidence: np.ndarray, min_coverage: float = MIN_COVERAGE) -> float:
    """The highest threshold that still answers ``min_coverage`` of the held-out letters.

    Refusing is what a threshold is for, so it is set as high as the letters allow:
    the share of letters answered falls as it rises, and ``min_coverage`` says how far.
    """
    if not len(letter_confidence):
        return 0.0
    return float(np.quantile(letter_confidence, 1.0 - min_coverage))


def calibrate(
    letter_logits: np.ndarray,
    letter_targets: np.ndarray,
    other_logits: np.ndarray | None = None,
    *,
    min_coverage: float = MIN_COVERAGE,
    threshold: float | None = None,
    pairs: Sequence[tuple[int, int]] = (),
    source: str = "",
) -> Calibration:
    """Fit the temperature on held-out letters and choose the "?" threshold.

    Args:
        letter_logits: (n, classes) logits of held-out letters; ``letter_targets`` their classes.
        other_logits: logits of held-out images of no letter, to report how many the
            threshold refuses (``None``: not reported).
        min_coverage: share of the letters the chosen threshold must leave answered.
        threshold: take this threshold instead of choosing one.
        pairs: the look-alike classes (:func:`look_alike_pairs`) the coverage is counted with.
        source: what the held-out images are, for the metadata.
    """
    temperature = fit_temperature(letter_logits, letter_targets)
    before, after = softmax(letter_logits), softmax(letter_logits, temperature)
    confidence = after.max(axis=1)
    if threshold is None:
        threshold = math.floor(choose_threshold(confidence, min_coverage) * 1e4) / 1e4  # down: keep the coverage
    right = after.argmax(axis=1) == letter_targets
    others = softmax(other_logits, temperature) if other_logits is not None else np.zeros((0, after.shape[1]))
    ((_, coverage, accuracy, refused),) = risk_coverage(after, right, others, np.array([threshold]), pairs)
    return Calibration(
        temperature=temperature,
        min_confidence=threshold,
        ece_before=ece(before, letter_targets),
        ece_after=ece(after, letter_targets),
        nll_before=nll(before, letter_targets),
        nll_after=nll(after, letter_targets),
        coverage=coverage,
        accuracy_answered=accuracy,
        refused=refused,
        source=source,
    )
