"""The network: our img2col convolution and the residual LetterCNN (training side, needs torch)."""

from lettercnn.nn.checkpoint import checkpoint_payload, load_checkpoint
from lettercnn.nn.conv import Conv2d, Conv2dFunction, conv_output_size
from lettercnn.nn.model import LetterCNN, ModelConfig

__all__ = [
    "Conv2d",
    "Conv2dFunction",
    "LetterCNN",
    "ModelConfig",
    "checkpoint_payload",
    "conv_output_size",
    "load_checkpoint",
]
