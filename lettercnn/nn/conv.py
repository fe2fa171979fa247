"""Our own 2-D convolution: img2col forward, hand-written backward.

A convolution is a matrix product once every receptive field is laid out as a
column (img2col, what ``F.unfold`` computes)::

    x (b, c, h, w) --unfold--> cols (b, c*kh*kw, L)        L = out_h * out_w
    y = W (o, c*kh*kw) @ cols + bias  -> (b, o, L) -> (b, o, out_h, out_w)

and its gradients are matrix products too::

    dW = sum_b dY_b @ cols_b^T          (o, c*kh*kw)
    db = sum_{b, L} dY                   (o,)
    dx = fold(W^T @ dY_b)                fold (``F.fold``) sums overlapping patches back

Speed. ``F.unfold`` and ``F.fold`` compute exactly these layouts, but their CPU
kernels are scalar loops on one core: on 2 cores, for the 5x5 conv on 32 channels at
batch 64, ``F.unfold`` took 151 ms and ``F.fold`` 71 ms, against ~40 ms for the GEMM
they feed. :func:`unfold` and :func:`fold` below produce the very same tensors from
strided views -- one vectorised, multi-threaded copy for unfold (71 ms), kh*kw
strided adds for fold (22 ms) -- and the tests hold them equal to ``F.unfold`` and
``F.fold``. The batch is unfolded in chunks whose columns fit in the CPU cache and
each image is one plain GEMM while its columns are still there (no expanded weight,
no batched copy), with the bias fused into it (``addmm``); the backward GEMMs take
transposed views (BLAS reads them in place). The columns are kept for the backward
rather than rebuilt (~310 MB for a batch of 64, fine for training).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

# Images are unfolded in chunks of about this many bytes of columns (a multiple of the
# thread count), small enough that the GEMMs that follow read the columns from cache.
# Measured on 2 cores, benchmarks/conv_speed.py, alternating runs: 8 MiB 0.52-0.73x,
# 32 MiB 0.50-0.74x, 1 GiB (the whole batch) 0.47x of nn.Conv2d.
CHUNK_BYTES = 8 * 1024 * 1024

Pair = tuple[int, int]


def _pair(value: int | tuple[int, int], name: str) -> Pair:
    """An int or a pair of ints as a pair, as ``nn.Conv2d`` takes them."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair  # type: ignore[return-value]


def conv_output_size(size: Pair, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """Spatial output size: floor((H + 2p - k) / s) + 1 along each axis.

    Raises:
        ValueError: non-positive stride or kernel, negative padding, or a kernel
            larger than the padded input.
    """
    if min(stride) <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    if min(kernel) <= 0:
        raise ValueError(f"kernel_size must be positive, got {kernel}")
    if min(padding) < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    out = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel, stride, padding))
    if min(out) <= 0:
        raise ValueError(
            f"kernel {kernel} does not fit input {tuple(size)} with padding {padding}: output would be {out}"
        )
    return out  # type: ignore[return-value]


def _chunk_size(per_image_bytes: int, threads: int) -> int:
    """Images per unfold: enough to fill the cache budget, a multiple of the threads."""
    chunk = max(1, CHUNK_BYTES // max(1, per_image_bytes))
    return max(threads, chunk - chunk % threads)


def unfold(x: Tensor, kernel: Pair, stride: Pair, padding: Pair) -> Tensor:
    """img2col: every receptive field of ``x`` as a column; equals ``F.unfold``.

    Args:
        x: (b, c, h, w).
        kernel, stride, padding: pairs, as in :class:`Conv2d`.

    Returns:
        (b, c*kh*kw, out_h*out_w), rows ordered (c, kh, kw) like ``F.unfold``.
    """
    batch, channels = x.shape[:2]
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    padded = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
    windows = padded.unfold(2, kh, sh).unfold(3, kw, sw)  # (b, c, oh, ow, kh, kw), a view
    out_h, out_w = windows.shape[2:4]
    return windows.permute(0, 1, 4, 5, 2, 3).reshape(batch, channels * kh * kw, out_h * out_w)  # one copy


def fold(cols: Tensor, size: Pair, kernel: Pair, stride: Pair, padding: Pair) -> Tensor:
    """col2im: sum every column back onto its receptive field; equals ``F.fold``.

    Args:
        cols: (b, c*kh*kw, out_h*out_w).
        size: (h, w) of the image to rebuild.
        kernel, stride, padding: pairs, as in :class:`Conv2d`.

    Returns:
        (b, c, h, w).
    """
    (height, width), (kh, kw), (sh, sw), (ph, pw) = size, kernel, stride, padding
    out_h, out_w = conv_output_size(size, kernel, stride, padding)
    batch = cols.shape[0]
    patches = cols.view(batch, -1, kh, kw, out_h, out_w)  # (b, c, kh, kw, oh, ow)
    image = cols.new_zeros(batch, patches.shape[1], height + 2 * ph, width + 2 * pw)
    for i in range(kh):
        for j in range(kw):  # kernel offset (i, j) touches a strided grid of pixels
            image[:, :, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw] += patches[:, :, i, j]
    return image[:, :, ph : ph + height, pw : pw + width]


class Conv2dFunction(torch.autograd.Function):
    """y = conv2d(x, weight, bias) by img2col, with a hand-written backward."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, stride: Pair, padding: Pair) -> Tensor:
        batch, _, height, width = x.shape
        out_channels, _, kh, kw = weight.shape
        out_h, out_w = conv_output_size((height, width), (kh, kw), stride, padding)
        positions = out_h * out_w
        w_mat = weight.reshape(out_channels, -1)  # (o, K)   K = c*kh*kw
        bias_mat = (bias if bias is not None else weight.new_zeros(out_channels))[:, None].expand(
            out_channels, positions
        )  # (o, L), a view
        y = x.new_empty(batch, out_channels, out_h, out_w)
        y_mat = y.view(batch, out_channels, positions)  # (b, o, L), written in place
        chunk = _chunk_size(w_mat.shape[1] * positions * x.element_size(), torch.get_num_threads())
        chunks = []
        for start in range(0, batch, chunk):
            cols = unfold(x[start : start + chunk], (kh, kw), stride, padding)  # (c_, K, L)
            for i in range(cols.shape[0]):  # the columns are still in cache
                torch.addmm(bias_mat, w_mat, cols[i], out=y_mat[start + i])  # (o, K) @ (K, L)
            chunks.append(cols)
        ctx.save_for_backward(weight, *chunks)
        ctx.has_bias = bias is not None
        ctx.conf = (x.shape, stride, padding)
        return y  # not a view: the ReLU after it may work in place

    @staticmethod
    @once_differentiable  # the backward is plain GEMMs and folds, not itself differentiable
    def backward(ctx, grad_y: Tensor):
        weight, *chunks = ctx.saved_tensors
        x_shape, stride, padding = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        out_channels = weight.shape[0]
        d_y = grad_y.reshape(x_shape[0], out_channels, -1)  # (b, o, L)
        w_mat_t = weight.reshape(out_channels, -1).mT  # (K, o), a view
        d_w = weight.new_zeros(out_channels, w_mat_t.shape[0]) if need_w else None  # (o, K)
        folds = []
        start = 0
        for cols in chunks:  # (c_, K, L)
            d_cols = torch.empty_like(cols) if need_x else None
            for i in range(cols.shape[0]):
                if need_w:
                    d_w.addmm_(d_y[start + i], cols[i].mT)  # (o, L) @ (L, K), one GEMM per image
                if need_x:
                    torch.mm(w_mat_t, d_y[start + i], out=d_cols[i])  # (K, o) @ (o, L)
            if need_x:  # sum the overlapping patches back onto the input grid
                folds.append(fold(d_cols, x_shape[2:], weight.shape[2:], stride, padding))
            start += cols.shape[0]
        d_x = torch.cat(folds) if need_x else None
        d_w = d_w.view_as(weight) if need_w else None
        d_b = d_y.sum(dim=(0, 2)) if (need_b and ctx.has_bias) else None
        return d_x, d_w, d_b, None, None


class Conv2d(nn.Module):
    """A drop-in for ``nn.Conv2d`` (groups=1, dilation=1) computed by :class:`Conv2dFunction`.

    Parameters are named ``weight`` (o, c, kh, kw) and ``bias`` (o,) so the state
    dict loads strictly into ``torch.nn.Conv2d``, and they start the way
    ``nn.Conv2d``'s do (Kaiming-uniform with a=sqrt(5), i.e. U(-1/sqrt(fan_in),
    1/sqrt(fan_in))): the scale of each output then stays near the scale of its
    input, where a plain ``randn`` init multiplies it by about sqrt(fan_in) per
    layer (x28 for a 5x5 conv over 32 channels) and training starts saturated.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"channels must be positive, got in={in_channels} out={out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        conv_output_size(self.kernel_size, self.kernel_size, self.stride, self.padding)  # validates
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise exactly as ``nn.Conv2d.reset_parameters`` does."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (batch, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return Conv2dFunction.apply(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )
