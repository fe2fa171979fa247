"""Our img2col Conv2d against the worked example, autograd and torch's own convolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lettercnn.nn.conv import Conv2d, Conv2dFunction, conv_output_size, fold, unfold

# The worked example of the design (one image, one channel, 3x3 input, 2x2 kernel).
SEED_X = [[-0.5, 0.2, 0.3], [0.6, -0.4, 0.1], [0.4, 0.5, -0.2]]
SEED_W = [[-0.2, 0.1], [0.4, -0.3]]
SEED_B = 0.05
SEED_Y = [[0.53, -0.15], [-0.10, 0.40]]
SEED_DY = [[0.1, -0.2], [0.2, 0.3]]
SEED_DX = [[-0.02, 0.05, -0.02], [0.0, -0.15, 0.09], [0.08, 0.06, -0.09]]
SEED_DW = [[-0.09, -0.09], [0.37, -0.02]]
SEED_DB = 0.4

# (in, out, kernel, stride, padding, input hw) of LetterCNN's five convolutions at batch 4.
LETTERCNN_LAYERS = [
    (1, 32, 5, 1, 2, (32, 32)),
    (32, 64, 5, 1, 2, (32, 32)),
    (64, 64, 3, 1, 1, (16, 16)),
    (64, 128, 3, 1, 1, (16, 16)),
    (128, 128, 3, 1, 1, (8, 8)),
]


def seed_tensors(dtype=torch.float64):
    x = torch.tensor(SEED_X, dtype=dtype).view(1, 1, 3, 3).requires_grad_()
    w = torch.tensor(SEED_W, dtype=dtype).view(1, 1, 2, 2).requires_grad_()
    b = torch.tensor([SEED_B], dtype=dtype).requires_grad_()
    return x, w, b


def test_forward_gives_y_of_seed_example():
    x, w, b = seed_tensors()
    y = Conv2dFunction.apply(x, w, b, (1, 1), (0, 0))
    torch.testing.assert_close(y.view(2, 2), torch.tensor(SEED_Y, dtype=torch.float64), atol=1e-12, rtol=0)


def test_backward_gives_dx_dw_db_of_seed_example():
    x, w, b = seed_tensors()
    y = Conv2dFunction.apply(x, w, b, (1, 1), (0, 0))
    y.backward(torch.tensor(SEED_DY, dtype=torch.float64).view(1, 1, 2, 2))
    expect = dict(dx=SEED_DX, dw=SEED_DW)
    torch.testing.assert_close(x.grad.view(3, 3), torch.tensor(expect["dx"], dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(w.grad.view(2, 2), torch.tensor(expect["dw"], dtype=torch.float64), atol=1e-12, rtol=0)
    assert b.grad.item() == pytest.approx(SEED_DB, abs=1e-12)


@pytest.mark.parametrize(
    "cin, cout, kernel, stride, padding, hw",
    [
        (1, 1, 2, 1, 0, (3, 3)),
        (2, 3, 3, 1, 1, (5, 6)),
        (3, 2, (2, 3), (2, 1), (1, 0), (6, 5)),  # non-square kernel, stride and padding
        (2, 4, (3, 1), (1, 2), (0, 1), (4, 7)),
        (1, 2, 5, 2, 2, (7, 7)),
    ],
)
def test_gradcheck_in_float64(cin, cout, kernel, stride, padding, hw):
    torch.manual_seed(0)
    conv = Conv2d(cin, cout, kernel, stride, padding).double()
    x = torch.randn(2, cin, *hw, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: Conv2dFunction.apply(x, w, b, conv.stride, conv.padding),
        (x, conv.weight, conv.bias),
    )


def test_gradcheck_without_bias():
    torch.manual_seed(1)
    conv = Conv2d(2, 3, 3, padding=1, bias=False).double()
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert conv.bias is None
    assert torch.autograd.gradcheck(lambda x, w: Conv2dFunction.apply(x, w, None, (1, 1), (1, 1)), (x, conv.weight))


@pytest.mark.parametrize("cin, cout, kernel, stride, padding, hw", LETTERCNN_LAYERS)
def test_matches_torch_conv2d_on_real_layer_shapes(cin, cout, kernel, stride, padding, hw):
    torch.manual_seed(0)
    ours = Conv2d(cin, cout, kernel, stride, padding)
    theirs = nn.Conv2d(cin, cout, kernel, stride, padding)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x1 = torch.randn(4, cin, *hw, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    y1, y2 = ours(x1), theirs(x2)
    torch.testing.assert_close(y1, y2, atol=1e-4, rtol=1e-4)
    grad = torch.randn_like(y1)
    y1.backward(grad)
    y2.backward(grad)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(ours.bias.grad, theirs.bias.grad, atol=1e-3, rtol=1e-4)


def test_large_batch_spans_several_chunks_and_matches_torch():
    # 40 images of the 5x5 conv on 32 channels cross many column chunks.
    torch.manual_seed(0)
    x = torch.randn(40, 32, 32, 32, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, 32, 5, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(8, dtype=torch.float64, requires_grad=True)
    y = Conv2dFunction.apply(x, w, b, (1, 1), (2, 2))
    grads = torch.autograd.grad(y.sum(), (x, w, b))
    ref_y = F.conv2d(x, w, b, padding=2)
    ref_grads = torch.autograd.grad(ref_y.sum(), (x, w, b))
    torch.testing.assert_close(y, ref_y)
    for ours, theirs in zip(grads, ref_grads):
        torch.testing.assert_close(ours, theirs)


def test_state_dict_loads_strictly_into_torch_conv2d():
    ours = Conv2d(3, 5, (3, 2), stride=2, padding=(1, 0))
    theirs = nn.Conv2d(3, 5, (3, 2), stride=2, padding=(1, 0))
    theirs.load_state_dict(ours.state_dict(), strict=True)
    assert set(ours.state_dict()) == {"weight", "bias"}
    assert (ours.kernel_size, ours.stride, ours.padding) == (theirs.kernel_size, theirs.stride, theirs.padding)


def test_init_matches_torch_conv2d_distribution():
    torch.manual_seed(0)
    ours = Conv2d(32, 64, 5)
    torch.manual_seed(0)
    theirs = nn.Conv2d(32, 64, 5)
    torch.testing.assert_close(ours.weight, theirs.weight)
    torch.testing.assert_close(ours.bias, theirs.bias)


@pytest.mark.parametrize(
    "size, kernel, stride, padding, expected",
    [
        ((32, 32), (5, 5), (1, 1), (2, 2), (32, 32)),
        ((7, 7), (3, 3), (2, 2), (0, 0), (3, 3)),
        ((8, 9), (3, 2), (2, 3), (1, 0), (4, 3)),
        ((5, 5), (5, 5), (1, 1), (0, 0), (1, 1)),
        ((6, 6), (2, 2), (4, 4), (1, 1), (2, 2)),
    ],
)
def test_output_size_formula(size, kernel, stride, padding, expected):
    assert conv_output_size(size, kernel, stride, padding) == expected
    x = torch.randn(1, 1, *size)
    assert F.conv2d(x, torch.randn(1, 1, *kernel), stride=stride, padding=padding).shape[2:] == expected


def test_kernel_larger_than_input_raises_naming_the_numbers():
    conv = Conv2d(1, 1, 5)
    with pytest.raises(ValueError, match=r"kernel \(5, 5\) does not fit input \(3, 3\)"):
        conv(torch.randn(1, 1, 3, 3))


@pytest.mark.parametrize("stride", [0, -1, (1, 0)])
def test_non_positive_stride_raises(stride):
    with pytest.raises(ValueError, match="stride must be positive"):
        Conv2d(1, 1, 3, stride=stride)


def test_channel_mismatch_raises_naming_channels():
    conv = Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"expected input \(batch, 3, H, W\), got \(2, 1, 8, 8\)"):
        conv(torch.randn(2, 1, 8, 8))


@pytest.mark.parametrize(
    "channels, hw, kernel, stride, padding",
    [(1, (5, 5), (2, 2), (1, 1), (0, 0)), (3, (8, 7), (3, 2), (2, 1), (1, 0)), (32, (32, 32), (5, 5), (1, 1), (2, 2)),
     (2, (9, 9), (3, 3), (3, 2), (2, 1)), (4, (6, 6), (1, 1), (2, 2), (0, 0))],
)  # fmt: skip
def test_our_unfold_and_fold_equal_torch_unfold_and_fold(channels, hw, kernel, stride, padding):
    torch.manual_seed(0)
    x = torch.randn(3, channels, *hw, dtype=torch.float64)
    cols = unfold(x, kernel, stride, padding)
    assert torch.equal(cols, F.unfold(x, kernel, padding=padding, stride=stride))
    d_cols = torch.randn_like(cols)
    torch.testing.assert_close(
        fold(d_cols, hw, kernel, stride, padding), F.fold(d_cols, hw, kernel, padding=padding, stride=stride)
    )
