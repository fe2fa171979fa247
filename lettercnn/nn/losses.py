"""The training loss: cross-entropy on letters, and outlier exposure on what is not a letter.

A classifier trained on letters alone has no way to say "none of these": shown a
blank page or a "7", it spreads its certainty over the letters it knows and often
answers with confidence. Outlier exposure (Hendrycks, Mazeika and Dietterich, 2019)
adds images of no letter to training, with the target "uniform over the 26 letters":
their loss is the cross-entropy from the uniform distribution to the prediction,
``logsumexp(z) - mean(z)``, which is ``ln 26`` at best. So the model learns to give
non-letters a flat, low top probability, and a threshold on the top probability
(the runtime's ``--min-confidence``) refuses them, with no extra class: the network
keeps its 26 outputs and the ONNX file its plain shape.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lettercnn.labels import NOT_A_LETTER


def letter_loss(logits: torch.Tensor, targets: torch.Tensor, outlier_weight: float = 0.5) -> torch.Tensor:
    """Mean cross-entropy over the letters plus ``outlier_weight`` times the mean
    outlier-exposure term over the images of no letter.

    Args:
        logits: (b, classes).
        targets: (b,) class indices, or ``NOT_A_LETTER`` (-1) for an image of no letter.
        outlier_weight: weight of the non-letters' term (Hendrycks et al. use 0.5).

    Returns:
        A scalar. Each term is 0 when its images are absent; the outlier term is 0
        when the prediction on them is uniform.
    """
    letters = targets != NOT_A_LETTER
    loss = logits.new_zeros(())
    if letters.any():
        loss = loss + F.cross_entropy(logits[letters], targets[letters])
    if outlier_weight and not letters.all():
        outliers = logits[~letters]  # (n, classes)
        uniform = torch.logsumexp(outliers, dim=1) - outliers.mean(dim=1) - math.log(logits.shape[1])
        loss = loss + outlier_weight * uniform.mean()
    return loss
