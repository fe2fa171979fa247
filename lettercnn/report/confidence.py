"""How far the model's confidence can be trusted: the numbers of the reliability diagram
and of the risk-coverage curve (numpy; the math is :mod:`lettercnn.calibration`'s).

- **Reliability**: the test letters' top probabilities in
  :data:`~lettercnn.calibration.ECE_BINS` equal-width bins ``(k/15, (k+1)/15]``, binned
  as :func:`~lettercnn.calibration.ece` bins them; per bin the count, the accuracy and
  the mean confidence. The ECE is the count-weighted mean of |accuracy - confidence|.
  Shown at temperature 1 (the raw softmax) and at the temperature ``letters export``
  fits on the run's validation letters (:func:`~lettercnn.calibration.calibrate`).
- **Risk-coverage**: as the threshold on the (calibrated) top probability rises, the
  share of test letters still answered, the accuracy among them, and the share of
  rendered images of no letter refused (:func:`~lettercnn.calibration.risk_coverage`).
  The threshold export writes into the model, chosen on the validation letters by
  :func:`~lettercnn.calibration.choose_threshold` at
  :data:`~lettercnn.calibration.MIN_COVERAGE`, is marked.

Everything here is JSON-ready: a missing number (an empty bin, no letter answered, no
non-letters) is None, never NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lettercnn import calibration
from lettercnn.labels import LETTERS

# Thresholds of the risk-coverage table (report.json and the page), the chosen one added:
# from answering everything, through the values a user would try for --min-confidence.
TABLE_THRESHOLDS = (0.0, 0.5, 0.7, 0.9, 0.95, 0.99, 0.999)


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of the reliability diagram.

    Attributes:
        low, high: the bin's bounds, ``(low, high]`` (the first also holds 0).
        count: test letters whose top probability falls in it.
        accuracy: share of them read right; None for an empty bin.
        confidence: their mean top probability; None for an empty bin.
    """

    low: float
    high: float
    count: int
    accuracy: float | None
    confidence: float | None


@dataclass(frozen=True)
class Reliability:
    """The test letters' calibration at one temperature.

    Attributes:
        temperature: the logits were divided by it before the softmax.
        ece: expected calibration error (:func:`lettercnn.calibration.ece`), 0..1.
        nll: mean negative log-likelihood of the true letters, nats.
        bins: the :data:`~lettercnn.calibration.ECE_BINS` bins.
    """

    temperature: float
    ece: float
    nll: float
    bins: list[ReliabilityBin]


@dataclass(frozen=True)
class CoveragePoint:
    """The test letters and the non-letters at one threshold on the top probability.

    Attributes:
        threshold: a top probability below it is answered "?".
        answered: share of the test letters answered (the coverage).
        accuracy: right among those answered; None when none is.
        refused: share of the non-letters answered "?"; None without non-letters.
    """

    threshold: float
    answered: float
    accuracy: float | None
    refused: float | None


@dataclass(frozen=True)
class Confidence:
    """Everything the report says about the model's confidence.

    Attributes:
        fitted_on: what the temperature and the threshold were fitted on, or why they were not.
        before: the test letters at temperature 1.
        after: at the fitted temperature; None when there was nothing to fit on.
        threshold: the "?" threshold export writes (chosen on the validation letters to
            keep :attr:`min_coverage` of them answered); None when not fitted.
        min_coverage: :data:`~lettercnn.calibration.MIN_COVERAGE`.
        validation_answered: share of the validation letters answered at ``threshold``.
        at_threshold: the test letters and non-letters at ``threshold``.
        table: the same at :data:`TABLE_THRESHOLDS` and ``threshold``, rising.
        non_letters: how many images of no letter the refusals count.
        non_letters_source: which they are.
    """

    fitted_on: str
    before: Reliability
    after: Reliability | None
    threshold: float | None
    min_coverage: float
    validation_answered: float | None
    at_threshold: CoveragePoint | None
    table: list[CoveragePoint]
    non_letters: int
    non_letters_source: str

    @property
    def temperature(self) -> float:
        """The temperature the curve and the threshold use (1 when none was fitted)."""
        return self.after.temperature if self.after is not None else 1.0


def _number(value: float) -> float | None:
    """NaN -> None (JSON has no NaN), else the float."""
    return None if math.isnan(value) else float(value)


def reliability_bins(
    probabilities: np.ndarray, targets: np.ndarray, bins: int = calibration.ECE_BINS
) -> list[ReliabilityBin]:
    """The reliability diagram's bins: the top probabilities in ``bins`` equal-width bins.

    Binned exactly as :func:`lettercnn.calibration.ece` bins them, so the count-weighted
    mean of |accuracy - confidence| over these bins is that ECE.

    Args:
        probabilities: ``(n, classes)`` softmax outputs.
        targets: ``(n,)`` true classes.
        bins: number of bins.

    Returns:
        ``bins`` bins, from ``(0, 1/bins]`` up.
    """
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == targets
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)  # (n,): (k/bins, (k+1)/bins]
    out = []
    for b in range(bins):
        mine = index == b
        count = int(mine.sum())
        accuracy = float(right[mine].mean()) if count else None
        mean = float(confidence[mine].mean()) if count else None
        out.append(ReliabilityBin(b / bins, (b + 1) / bins, count, accuracy, mean))
    return out


def reliability(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> Reliability:
    """ECE, NLL and the bins of ``logits / temperature``."""
    probabilities = calibration.softmax(logits, temperature)
    return Reliability(
        temperature,
        calibration.ece(probabilities, targets),
        calibration.nll(probabilities, targets),
        reliability_bins(probabilities, targets),
    )


def coverage_points(
    logits: np.ndarray, targets: np.ndarray, other_logits: np.ndarray, temperature: float, thresholds: np.ndarray
) -> list[CoveragePoint]:
    """:func:`lettercnn.calibration.risk_coverage` of the letters and non-letters at ``temperature``.

    Args:
        logits: ``(n, classes)`` of the letters; ``targets`` their classes.
        other_logits: ``(m, classes)`` of images of no letter (m may be 0).
        temperature: divides every logit.
        thresholds: on the top probability (a look-alike pair, I and L, together).

    Returns:
        One point per threshold, in the order given.
    """
    probabilities = calibration.softmax(logits, temperature)
    others = calibration.softmax(other_logits, temperature) if len(other_logits) else np.zeros((0, logits.shape[1]))
    rows = calibration.risk_coverage(
        probabilities, probabilities.argmax(axis=1) == targets, others, thresholds, _look_alikes(logits)
    )
    return [CoveragePoint(t, answered, _number(accuracy), _number(refused)) for t, answered, accuracy, refused in rows]


def _look_alikes(logits: np.ndarray) -> tuple[tuple[int, int], ...]:
    """The look-alike pairs (I and L) of an A-Z model's ``logits``; none for other classes."""
    return calibration.look_alike_pairs(LETTERS) if logits.shape[1] == len(LETTERS) else ()


def curve_thresholds(logits: np.ndarray, other_logits: np.ndarray, temperature: float) -> np.ndarray:
    """Every threshold at which the curve changes: 0 and each distinct top probability."""
    tops = [calibration.softmax(values, temperature).max(axis=1) for values in (logits, other_logits) if len(values)]
    return np.unique(np.concatenate([np.zeros(1), *tops]))


def measure(
    logits: np.ndarray,
    targets: np.ndarray,
    *,
    val_logits: np.ndarray | None,
    val_targets: np.ndarray | None,
    other_logits: np.ndarray,
    fitted_on: str,
    non_letters_source: str,
) -> Confidence:
    """Calibrate as ``letters export`` does and measure the test letters before and after.

    Args:
        logits: ``(n, 26)`` of the test letters; ``targets`` their classes.
        val_logits: ``(v, 26)`` of the validation letters, to fit the temperature and the
            threshold on (:func:`lettercnn.calibration.calibrate`); None or empty: not fitted.
        val_targets: their classes.
        other_logits: ``(m, 26)`` of images of no letter (m may be 0).
        fitted_on: what the validation letters are, or why there are none.
        non_letters_source: what the images of no letter are.

    Returns:
        The reliability before and after, the threshold and the risk-coverage table.
    """
    fitted = None
    if val_logits is not None and val_targets is not None and len(val_targets):
        others = other_logits if len(other_logits) else None
        fitted = calibration.calibrate(
            val_logits, val_targets, others, pairs=_look_alikes(val_logits), source=fitted_on
        )
    temperature = fitted.temperature if fitted is not None else 1.0
    threshold = fitted.min_confidence if fitted is not None else None
    thresholds = np.array(sorted({*TABLE_THRESHOLDS, *([threshold] if threshold is not None else [])}))
    table = coverage_points(logits, targets, other_logits, temperature, thresholds)
    return Confidence(
        fitted_on=fitted_on,
        before=reliability(logits, targets),
        after=reliability(logits, targets, temperature) if fitted is not None else None,
        threshold=threshold,
        min_coverage=calibration.MIN_COVERAGE,
        validation_answered=fitted.coverage if fitted is not None else None,
        at_threshold=next((point for point in table if point.threshold == threshold), None),
        table=table,
        non_letters=len(other_logits),
        non_letters_source=non_letters_source,
    )
