"""What the report looks at: the trained model, its test images, and what it computes on them.

The test images are the ones :func:`lettercnn.training.evaluate.held_out` gives: with
``data``, the held-out images of that tree (those ``letters eval`` scores); without it,
the run's own test split, rebuilt from the checkpoint's training config (an image tree
it trained on, or the built-in synthetic letters, re-rendered from the same seed and
sample stream, so they are exactly the images ``metrics.json`` scored).

One pass over the test set keeps, per image, the 256-d feature after
Linear -> BN1d -> ReLU, the 26 logits, the entropies of the input and of each conv
block's output (see :mod:`lettercnn.report.entropy`), and where each channel of conv
layer 1 peaks; the conv blocks' activations are too large to keep (~600 kB per image)
and are reduced batch by batch.

torch is imported inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lettercnn import preprocess
from lettercnn.data.imagetree import LabelledGlyphs
from lettercnn.labels import NUM_CLASSES
from lettercnn.report.entropy import feature_entropy, image_entropy

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from lettercnn.nn.model import LetterCNN

# Called as progress(step, done, total) while a slow step runs; no Rich here.
ReportProgress = Callable[[str, int, int], None]
STEP_DATA = "reading test letters"
STEP_FEATURES = "extracting features"

# Images per forward pass: the five blocks' activations take 0.6 MB per image, and their
# histograms several times that in temporaries, so 64 keeps the pass under ~0.5 GB.
FEATURE_BATCH_SIZE = 64
# Names of the five conv blocks, in order, as the report shows them.
BLOCK_NAMES = ("block 1", "block 2", "block 3", "block 4", "block 5")
# What a channel of conv layer 1 responds to is averaged over the input patches of the
# test images where it peaks highest: 16 keeps one odd image from setting the pattern
# and still picks the images that matter, in a test set of 26 (the tests') or thousands.
PATTERN_IMAGES = 16


@dataclass(frozen=True)
class Features:
    """The model's view of every test image.

    Attributes:
        hidden: float32 ``(n, 256)``, after Linear -> BN1d -> ReLU.
        logits: float32 ``(n, 26)``.
        input_entropy: ``(n,)`` nats, see :func:`~lettercnn.report.entropy.image_entropy`.
        block_entropy: ``(n, 5)`` nats, see :func:`~lettercnn.report.entropy.feature_entropy`.
        block_zeros: ``(n, 5)`` share of each block's activations that are exactly 0.
        block_shapes: ``(channels, height, width)`` of each block's output.
        layer1_peaks: ``(n, c)`` the largest value of each channel of conv layer 1 (block 2).
        layer1_peak_at: ``(n, c)`` where it is, as a flat index ``row * width + column``.
    """

    hidden: np.ndarray
    logits: np.ndarray
    input_entropy: np.ndarray
    block_entropy: np.ndarray
    block_zeros: np.ndarray
    block_shapes: list[tuple[int, int, int]]
    layer1_peaks: np.ndarray
    layer1_peak_at: np.ndarray


def load_model(checkpoint: str | os.PathLike[str], device: str) -> tuple[LetterCNN, dict[str, Any]]:
    """The trained model in eval mode on ``device``, and its checkpoint payload.

    Built with the ``nn.Conv2d`` twin of our img2col convolution: the same state dict,
    the same outputs (to float rounding), about twice as fast on a CPU.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: not a lettercnn checkpoint, the weights of another architecture, or
            a model of other classes than the 26 letters.
    """
    from lettercnn.nn.checkpoint import load_checkpoint, resolve_checkpoint
    from lettercnn.nn.model import LetterCNN

    payload = load_checkpoint(checkpoint)
    model = LetterCNN.from_payload(payload, resolve_checkpoint(checkpoint), conv="torch")
    if model.config.num_classes != NUM_CLASSES:
        raise ValueError(f"{checkpoint} scores {model.config.num_classes} classes; the letters are {NUM_CLASSES}")
    return model.to(device).eval(), payload


def load_test_images(
    train_config: Mapping[str, Any] | None,
    data: str | os.PathLike[str] | None,
    progress: ReportProgress,
) -> LabelledGlyphs:
    """The labelled test images of a run (see the module docstring for which).

    Args:
        train_config: the checkpoint's ``train_config``; None for a bare checkpoint.
        data: an image tree to take the test images from instead; None: the run's own.
        progress: called while the images are rendered or decoded.

    Returns:
        The images, their labels and where they came from.

    Raises:
        FileNotFoundError: the data folder does not exist.
        ValueError: no data given and the checkpoint does not say what it trained on;
            a bad image tree; no test image.
    """
    from lettercnn.training.evaluate import held_out

    test = held_out("test", train_config, data, progress=lambda done, total: progress(STEP_DATA, done, total))
    if not len(test.targets):
        raise ValueError(f"{test.source} holds no image; pass --data DIR")
    return test


def extract_features(
    model: LetterCNN,
    glyphs: np.ndarray,
    progress: ReportProgress,
    *,
    batch_size: int = FEATURE_BATCH_SIZE,
) -> Features:
    """Run the model over the glyphs and keep what the report needs (see :class:`Features`).

    Args:
        model: in eval mode.
        glyphs: uint8 ``(n, 32, 32)``.
        progress: called after each batch.
        batch_size: images per forward pass.

    Returns:
        The features, logits and entropies of every glyph.
    """
    import torch

    device = next(model.parameters()).device
    parts: dict[str, list[np.ndarray]] = {"hidden": [], "logits": [], "entropy": [], "zeros": [], "peak": [], "at": []}
    shapes: list[tuple[int, int, int]] = []
    with torch.inference_mode():
        for start in range(0, len(glyphs), batch_size):
            x = torch.from_numpy(preprocess.normalize(glyphs[start : start + batch_size])).to(device)  # (b, 1, 32, 32)
            blocks = model.conv_features(x)  # 5 x (b, c, h, w)
            hidden, logits = model.head(blocks[-1])  # the rest of forward: (b, 256), (b, 26)
            shapes = [(block.shape[1], block.shape[2], block.shape[3]) for block in blocks]
            parts["logits"].append(logits.cpu().numpy())
            parts["hidden"].append(hidden.cpu().numpy())
            activations = [block.flatten(1).cpu().numpy() for block in blocks]
            parts["entropy"].append(np.stack([feature_entropy(a) for a in activations], axis=1))  # (b, 5)
            parts["zeros"].append(np.stack([(a == 0).mean(axis=1) for a in activations], axis=1))  # (b, 5)
            peak, at = blocks[1].flatten(2).max(dim=2)  # (b, c) each: conv layer 1's peak per channel
            parts["peak"].append(peak.cpu().numpy())
            parts["at"].append(at.cpu().numpy())
            progress(STEP_FEATURES, min(start + batch_size, len(glyphs)), len(glyphs))
    joined = {key: np.concatenate(value) for key, value in parts.items()}
    return Features(
        joined["hidden"], joined["logits"], image_entropy(glyphs), joined["entropy"], joined["zeros"], shapes,
        joined["peak"], joined["at"],
    )  # fmt: skip


def receptive_radius(model: LetterCNN) -> int:
    """How far from a position of conv layer 1's output its input pixels reach: each
    "same"-padded k x k convolution adds k // 2 (2 + 2 = 4 for two 5x5: a 9x9 patch)."""
    return sum(conv.weight.shape[-1] // 2 for conv in (model.block1.conv, model.block2.conv))


def channel_patterns(glyphs: np.ndarray, features: Features, radius: int, images: int = PATTERN_IMAGES) -> np.ndarray:
    """What each channel of conv layer 1 responds to, in input pixels.

    For each channel: the ``images`` test images where it peaks highest, and in each the
    ``(2 radius + 1)`` square input patch centred on its peak (pixels outside the image
    count as background, 0); the mean of those patches.

    Args:
        glyphs: uint8 ``(n, size, size)``, the test images ``features`` was computed on.
        features: their features (its ``layer1_peaks`` and ``layer1_peak_at``).
        radius: see :func:`receptive_radius`.
        images: patches averaged per channel (all images when there are fewer).

    Returns:
        float32 ``(c, 2 radius + 1, 2 radius + 1)``, pixel values 0..255.
    """
    side, width = 2 * radius + 1, glyphs.shape[-1]
    padded = np.pad(glyphs.astype(np.float32), ((0, 0), (radius, radius), (radius, radius)))
    top = np.argsort(-features.layer1_peaks, axis=0, kind="stable")[:images]  # (k, c) image indices
    patterns = np.empty((top.shape[1], side, side), np.float32)
    for channel in range(top.shape[1]):
        rows, cols = np.divmod(features.layer1_peak_at[top[:, channel], channel], width)  # (k,) each
        patches = [
            padded[image, row : row + side, col : col + side] for image, row, col in zip(top[:, channel], rows, cols)
        ]
        patterns[channel] = np.mean(patches, axis=0)
    return patterns


def first_feature_maps(model: LetterCNN, glyph: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The outputs of conv blocks 1 and 2 (conv -> BN -> ReLU) for one glyph.

    Returns:
        float32 ``(32, 32, 32)`` and ``(64, 32, 32)``: channel, row, column.
    """
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        x = torch.from_numpy(preprocess.normalize(glyph[None])).to(device)  # (1, 1, 32, 32)
        blocks = model.conv_features(x)
    return blocks[0][0].cpu().numpy(), blocks[1][0].cpu().numpy()


def strongest_kernel_share(weight: np.ndarray) -> float:
    """How much one kernel says about its output channel: over the output channels of a
    conv weight ``(out, in, k, k)``, the mean share of the channel's squared weight held
    by its strongest input kernel (``1 / in`` when spread evenly, 1 when all in one)."""
    energy = (np.asarray(weight, dtype=np.float64) ** 2).sum(axis=(2, 3))  # (out, in)
    return float((energy.max(axis=1) / np.maximum(energy.sum(axis=1), np.finfo(float).tiny)).mean())
