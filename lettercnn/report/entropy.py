"""Shannon entropies, in nats, for the report: pure numpy, no torch.

Every quantity is ``H(p) = -Σ p_k ln p_k`` (natural log, so **nats**; ``0 ln 0 = 0``)
of some discrete distribution ``p``. What ``p`` is decides what the number means:

- :func:`image_entropy`: ``p`` is the histogram of an image's 8-bit pixel values over
  :data:`IMAGE_BINS` = 256 bins, one per value 0..255. We take the canonical 32x32
  glyph the model sees (after :func:`lettercnn.preprocess.canonical`, before the
  affine ``(x/255 - mean)/std``, which moves no pixel to another bin). At most
  ``ln 256 ≈ 5.55``.
- :func:`feature_entropy`: ``p`` is the histogram of *all* activations of one conv
  block for one image (every channel and position pooled) over :data:`FEATURE_BINS`
  = 256 equal-width bins spanning that image's own minimum to maximum of that block.
  A constant tensor has entropy 0. Same 256 bins as the image, so every stage shares
  the ceiling ``ln 256``. The per-image range makes the number blind to the scale of
  the activations (BatchNorm sets it anyway) and sensitive to their shape: a ReLU
  output that is mostly exactly 0 piles into the first bin and scores low.
- :func:`prediction_entropy`: ``p`` is the model's softmax over the 26 letters; 0 for
  a certain answer, ``ln 26 ≈ 3.26`` for a uniform one.
- :func:`label_entropy`: ``p`` is the share of each class among the labels.
- :func:`uniform_entropy`: a uniform random guess over ``n`` classes, ``ln n``.
- :func:`cross_entropy`: not an entropy of one distribution but the mean of
  ``-ln p(true class)`` over labelled images: the model's test loss, in nats.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# One bin per 8-bit pixel value.
IMAGE_BINS = 256
# As many bins as the image histogram, so all stages share the ceiling ln 256.
FEATURE_BINS = 256
# What a report of this same network on another letter set found, in nats: the numbers
# the report compares its own with. All that is known of them is in issue 5 of this
# project (the issue that asked for `letters report`), which quotes them as "a report of
# this same network on another letter set" and names neither the set nor the report;
# nothing else in the project does. The numbers themselves say one more thing: the
# labels' entropy, 2.93 nats < ln 26 = 3.26, means that set's letters were unequally
# frequent (as many as e^2.93 = 18.7 equally frequent letters would give), so it was not
# a balanced set such as EMNIST Letters or our synthetic splits.
REFERENCE: dict[str, Any] = {
    "input": 4.11,
    "blocks": [3.06, 3.02, 4.05, 2.56, 3.48],
    "random_guess": 3.26,
    "labels": 2.93,
    "cross_entropy": 0.47,
}
# Where REFERENCE comes from, in report.json and on the page; and its name in tables.
REFERENCE_SOURCE = 'issue 5 of lettercnn: "a report of this same network on another letter set" (the set is not named)'
REFERENCE_NAME = "reference (issue 5)"


def entropy(probabilities: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy ``-Σ p ln p`` in nats along ``axis``, with ``0 ln 0 = 0``.

    Args:
        probabilities: non-negative values summing to 1 along ``axis``.
        axis: the axis that holds each distribution.

    Returns:
        The entropies: one less dimension than ``probabilities`` (a 0-d array for a
        single distribution; ``float()`` it).

    Raises:
        ValueError: negative values, or a distribution that does not sum to 1.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if (p < 0).any():
        raise ValueError(f"probabilities must be non-negative, got a minimum of {p.min()}")
    totals = p.sum(axis=axis)
    if not np.allclose(totals, 1.0, atol=1e-6):
        raise ValueError(
            f"probabilities must sum to 1 along axis {axis}, got sums from {totals.min()} to {totals.max()}"
        )
    terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=axis)


def counts_entropy(counts: np.ndarray, axis: int = -1) -> np.ndarray:
    """Entropy in nats of the distributions given by counts (normalised along ``axis``).

    Raises:
        ValueError: negative counts, or a row of counts that sums to 0.
    """
    c = np.asarray(counts, dtype=np.float64)
    totals = c.sum(axis=axis, keepdims=True)
    if (c < 0).any() or (totals <= 0).any():
        raise ValueError("counts must be non-negative with a positive total")
    return entropy(c / totals, axis=axis)


def uniform_entropy(n: int) -> float:
    """Entropy of a uniform guess over ``n`` outcomes: ``ln n`` nats.

    Raises:
        ValueError: ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    return math.log(n)


def image_entropy(glyphs: np.ndarray) -> np.ndarray:
    """Entropy in nats of the 256-bin histogram of 8-bit pixel values, per image.

    Args:
        glyphs: uint8, one image ``(h, w)`` or a batch ``(n, h, w)``.

    Returns:
        A 0-d array for one image, else ``(n,)``.

    Raises:
        ValueError: not uint8.
    """
    images = np.asarray(glyphs)
    if images.dtype != np.uint8:
        raise ValueError(f"image_entropy takes uint8 images, got {images.dtype}")
    flat = images.reshape(-1, images.shape[-2] * images.shape[-1]).astype(np.int64)  # (n, h*w)
    rows = np.arange(len(flat))[:, None] * IMAGE_BINS
    counts = np.bincount((rows + flat).ravel(), minlength=len(flat) * IMAGE_BINS).reshape(-1, IMAGE_BINS)
    result = counts_entropy(counts)
    return result.reshape(images.shape[:-2])


def feature_entropy(activations: np.ndarray, bins: int = FEATURE_BINS) -> np.ndarray:
    """Entropy in nats of the histogram of each image's activations over its own range.

    All values of one image (channels and positions pooled) go into ``bins`` equal-width
    bins from that image's minimum to its maximum, the last bin closed (as
    ``np.histogram`` does). An image whose activations are all equal scores 0.

    Args:
        activations: ``(n, ...)``: the first axis is the image, the rest are pooled.
        bins: number of bins.

    Returns:
        ``(n,)`` entropies.

    Raises:
        ValueError: fewer than 1 bin, or no values per image.
    """
    if bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins}")
    values = np.asarray(activations, dtype=np.float64)
    values = values.reshape(len(values), -1)  # (n, values per image)
    if values.shape[1] == 0:
        raise ValueError("feature_entropy needs at least one value per image")
    low = values.min(axis=1, keepdims=True)
    span = values.max(axis=1, keepdims=True) - low
    scaled = (values - low) / np.where(span > 0, span, 1.0)  # 0..1; all 0 where constant
    index = np.minimum((scaled * bins).astype(np.int64), bins - 1)
    rows = np.arange(len(values))[:, None] * bins
    counts = np.bincount((rows + index).ravel(), minlength=len(values) * bins).reshape(-1, bins)
    return counts_entropy(counts)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``ln softmax(logits)`` along the last axis, computed stably."""
    z = np.asarray(logits, dtype=np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def prediction_entropy(logits: np.ndarray) -> np.ndarray:
    """Entropy in nats of the softmax of ``logits`` along the last axis."""
    return entropy(np.exp(log_softmax(logits)))


def label_entropy(targets: np.ndarray, num_classes: int) -> float:
    """Entropy in nats of the class shares among ``targets`` (class indices).

    Raises:
        ValueError: no targets, or a target outside ``0..num_classes-1``.
    """
    labels = np.asarray(targets, dtype=np.int64)
    if labels.size == 0 or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"targets must be a non-empty array of class indices in 0..{num_classes - 1}")
    return float(counts_entropy(np.bincount(labels, minlength=num_classes)))


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean of ``-ln p(true class)`` in nats, ``p`` the softmax of ``logits``.

    Args:
        logits: ``(n, classes)``.
        targets: ``(n,)`` class indices.

    Raises:
        ValueError: shapes that do not match, or no images.
    """
    log_p = log_softmax(logits)
    labels = np.asarray(targets, dtype=np.int64)
    if log_p.ndim != 2 or labels.shape != (log_p.shape[0],) or labels.size == 0:
        raise ValueError(f"need logits (n, classes) and targets (n,), got {log_p.shape} and {labels.shape}")
    return float(-log_p[np.arange(len(labels)), labels].mean())
