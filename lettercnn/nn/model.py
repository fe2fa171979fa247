"""LetterCNN: the residual letter classifier, 1x32x32 in, 26 logits out.

    conv 5x5 1->32 (p2)   BN ReLU                      (b, 32, 32, 32)
    conv 5x5 32->64 (p2)  BN ReLU                      (b, 64, 32, 32)
    maxpool 2                                          (b, 64, 16, 16)
    conv 3x3 64->64 (p1)  BN ReLU  + its input         (b, 64, 16, 16)
    conv 3x3 64->128 (p1) BN ReLU                      (b, 128, 16, 16)
    maxpool 2                                          (b, 128, 8, 8)
    conv 3x3 128->128 (p1) BN ReLU Dropout + its input (b, 128, 8, 8)
    flatten                                            (b, 8192)
    Linear 8192->256  BN1d ReLU Dropout                (b, 256)
    Linear 256->26                                     (b, 26)

93.1 M multiply-adds per image, 2.4 M parameters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lettercnn.labels import NUM_CLASSES
from lettercnn.nn.checkpoint import MODEL_CONFIG, STATE_DICT, load_checkpoint, resolve_checkpoint
from lettercnn.nn.conv import Conv2d

ConvImpl = Literal["img2col", "torch"]
# Weight names listed in an error about a checkpoint of another architecture.
NAMES_SHOWN = 3


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a LetterCNN; stored in every checkpoint."""

    num_classes: int = NUM_CLASSES
    # BatchNorm after every conv and the first Linear: trains faster and higher
    # (the classic comparison on this network: 0.855 without, 0.920 with).
    batch_norm: bool = True
    # Dropout after the last conv block and the first Linear. 0 by default: on the
    # synthetic set, augmentation already regularises and dropout slows convergence.
    dropout: float = 0.0
    # "img2col" is our Conv2d (training, the point of the project); "torch" builds
    # the nn.Conv2d twin with identical parameter names, for export and benchmarks.
    conv: ConvImpl = "img2col"

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.conv not in ("img2col", "torch"):
            raise ValueError(f"conv must be 'img2col' or 'torch', got {self.conv!r}")


class ConvBlock(nn.Module):
    """conv -> BN (or identity) -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, batch_norm: bool, conv: ConvImpl) -> None:
        super().__init__()
        conv_cls = Conv2d if conv == "img2col" else nn.Conv2d
        self.conv = conv_cls(cin, cout, kernel, padding=kernel // 2)
        self.bn = nn.BatchNorm2d(cout) if batch_norm else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class LetterCNN(nn.Module):
    """The residual letter CNN (see the module docstring for the layer table)."""

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        batch_norm: bool = True,
        dropout: float = 0.0,
        *,
        conv: ConvImpl = "img2col",
    ) -> None:
        super().__init__()
        self.config = ModelConfig(num_classes, batch_norm, dropout, conv)
        self.block1 = ConvBlock(1, 32, 5, batch_norm, conv)
        self.block2 = ConvBlock(32, 64, 5, batch_norm, conv)
        self.block3 = ConvBlock(64, 64, 3, batch_norm, conv)
        self.block4 = ConvBlock(64, 128, 3, batch_norm, conv)
        self.block5 = ConvBlock(128, 128, 3, batch_norm, conv)
        self.pool = nn.MaxPool2d(2)
        self.drop5 = nn.Dropout(dropout)
        self.fc1 = nn.Linear(128 * 8 * 8, 256)
        self.bn_fc = nn.BatchNorm1d(256) if batch_norm else nn.Identity()
        self.drop_fc = nn.Dropout(dropout)
        self.fc2 = nn.Linear(256, num_classes)

    def conv_features(self, x: Tensor) -> list[Tensor]:
        """Outputs of the five conv blocks (after the residual adds), in order."""
        f1 = self.block1(x)  # (b, 32, 32, 32)
        f2 = self.block2(f1)  # (b, 64, 32, 32)
        p2 = self.pool(f2)  # (b, 64, 16, 16)
        f3 = self.block3(p2) + p2  # (b, 64, 16, 16)
        f4 = self.block4(f3)  # (b, 128, 16, 16)
        p4 = self.pool(f4)  # (b, 128, 8, 8)
        f5 = self.drop5(self.block5(p4)) + p4  # (b, 128, 8, 8)
        return [f1, f2, f3, f4, f5]

    def head(self, f5: Tensor) -> tuple[Tensor, Tensor]:
        """From block 5's output: the 256-d feature after Linear -> BN1d -> ReLU, and the logits."""
        hidden = torch.relu(self.bn_fc(self.fc1(f5.flatten(1))))  # (b, 256)
        return hidden, self.fc2(self.drop_fc(hidden))  # (b, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.conv_features(x)[-1])[1]  # (b, num_classes)

    def fuse(self) -> LetterCNN:
        """Fold every BatchNorm into the conv or linear layer before it, for inference; in place.

        The folded model computes the same logits in eval mode with two fewer ops per
        block, and exports as plain Conv/Gemm nodes. Dropout is an identity in eval mode.

        Returns:
            The model itself, in eval mode (its BatchNorm layers are gone; do not train it).
        """
        from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

        self.eval()
        for block in (self.block1, self.block2, self.block3, self.block4, self.block5):
            if isinstance(block.bn, nn.BatchNorm2d):
                block.conv, block.bn = fuse_conv_bn_eval(block.conv, block.bn), nn.Identity()
        if isinstance(self.bn_fc, nn.BatchNorm1d):
            self.fc1, self.bn_fc = fuse_linear_bn_eval(self.fc1, self.bn_fc), nn.Identity()
        return self

    @classmethod
    def from_config(cls, config: ModelConfig | dict[str, Any]) -> LetterCNN:
        """Build an untrained model from a config (or its dict form)."""
        cfg = config if isinstance(config, ModelConfig) else ModelConfig(**config)
        return cls(cfg.num_classes, cfg.batch_norm, cfg.dropout, conv=cfg.conv)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        map_location: str | torch.device = "cpu",
        *,
        conv: ConvImpl | None = None,
    ) -> LetterCNN:
        """Rebuild a trained model from a checkpoint, with no flags.

        Args:
            path: a ``.pt`` file written by training, or a run folder (its ``best.pt``,
                else ``last.pt``).
            map_location: where to load the tensors.
            conv: override the convolution implementation (e.g. ``"torch"`` for export).

        Returns:
            The model in eval mode.

        Raises:
            FileNotFoundError: no checkpoint at ``path``.
            ValueError: the file is not a lettercnn checkpoint.
        """
        payload = load_checkpoint(path, map_location)
        return cls.from_payload(payload, resolve_checkpoint(path), conv=conv).eval()

    @classmethod
    def from_payload(
        cls, payload: Mapping[str, Any], source: str | os.PathLike[str], *, conv: ConvImpl | None = None
    ) -> LetterCNN:
        """Rebuild the model a checkpoint payload (:func:`load_checkpoint`) describes, weights loaded.

        Args:
            payload: the checkpoint's dict, with ``model_config`` and ``state_dict``.
            source: the checkpoint file, named in errors.
            conv: override the convolution implementation.

        Returns:
            The model, in training mode.

        Raises:
            ValueError: the config builds no LetterCNN, or the weights are another
                architecture's (missing, unexpected or differently shaped tensors).
        """
        config = payload[MODEL_CONFIG]
        try:
            model = cls.from_config({**config, **({"conv": conv} if conv is not None else {})})
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source} does not hold a LetterCNN: its model_config is not one ({err})") from None
        mismatch = _weights_mismatch(model.state_dict(), payload[STATE_DICT])
        if mismatch:
            raise ValueError(
                f"{source} holds the weights of another architecture, not of the LetterCNN its model_config "
                f"describes{_asked_for(model)}: {mismatch}"
            )
        model.load_state_dict(payload[STATE_DICT], strict=True)
        return model


def _asked_for(model: LetterCNN) -> str:
    """' (batch_norm=True, 26 classes)': what the checkpoint's model_config asked for."""
    return f" (batch_norm={model.config.batch_norm}, {model.config.num_classes} classes)"


def _weights_mismatch(expected: Mapping[str, Tensor], given: object) -> str:
    """How a state dict differs from the model's, in one line; "" when it fits."""
    if not isinstance(given, Mapping):
        return f"its state_dict is a {type(given).__name__}, not a mapping of tensors"

    def listed(names: list[str]) -> str:
        more = f", ... {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
        return ", ".join(names[:NAMES_SHOWN]) + more

    missing = [name for name in expected if name not in given]
    unexpected = [str(name) for name in given if name not in expected]
    reshaped = [
        f"{name} {tuple(getattr(given[name], 'shape', ()))} for {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in given and tuple(getattr(given[name], "shape", ())) != tuple(tensor.shape)
    ]
    parts = [
        f"{len(names)} {what} ({listed(names)})"
        for what, names in (("missing", missing), ("unexpected", unexpected), ("of another shape", reshaped))
        if names
    ]
    return "; ".join(parts)
