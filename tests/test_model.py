"""LetterCNN: its shapes, its switches, its twin with nn.Conv2d, its checkpoints."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lettercnn.nn.checkpoint import checkpoint_payload, input_spec, load_checkpoint
from lettercnn.nn.conv import Conv2d
from lettercnn.nn.model import LetterCNN, ModelConfig
from lettercnn.preprocess import DEFAULT_SPEC, InputSpec


def test_maps_a_batch_of_1x32x32_to_26_logits():
    assert LetterCNN()(torch.randn(3, 1, 32, 32)).shape == (3, 26)


def test_has_five_img2col_convolutions_with_the_design_shapes():
    convs = [m for m in LetterCNN().modules() if isinstance(m, Conv2d)]
    shapes = [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs]
    assert shapes == [
        (1, 32, (5, 5), (2, 2)),
        (32, 64, (5, 5), (2, 2)),
        (64, 64, (3, 3), (1, 1)),
        (64, 128, (3, 3), (1, 1)),
        (128, 128, (3, 3), (1, 1)),
    ]


def test_counts_93_million_multiply_adds_per_image():
    model = LetterCNN()
    macs = 0
    for feature, block in zip(
        model.conv_features(torch.zeros(2, 1, 32, 32)),
        [model.block1, model.block2, model.block3, model.block4, model.block5],
    ):
        weight = block.conv.weight
        macs += weight[0].numel() * weight.shape[0] * feature.shape[2] * feature.shape[3]
    macs += model.fc1.weight.numel() + model.fc2.weight.numel()
    assert macs == pytest.approx(93.1e6, rel=2e-3)


def test_batch_norm_off_leaves_no_batchnorm_layer():
    with_bn = LetterCNN(batch_norm=True)
    without = LetterCNN(batch_norm=False)
    assert sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in with_bn.modules()) == 6
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in without.modules())


def test_dropout_is_active_in_training_and_off_in_eval():
    torch.manual_seed(0)
    model = LetterCNN(dropout=0.5)
    x = torch.randn(4, 1, 32, 32)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_residual_adds_the_block_input():
    model = LetterCNN(batch_norm=False).eval()
    with torch.no_grad():
        for p in model.block3.parameters():
            p.zero_()  # block3 now outputs relu(0) = 0, so f3 is exactly its input
        f1, f2, f3, *_ = model.conv_features(torch.randn(2, 1, 32, 32))
        torch.testing.assert_close(f3, model.pool(f2))


def test_torch_conv_twin_gives_the_same_logits():
    torch.manual_seed(0)
    ours = LetterCNN().eval()
    twin = LetterCNN(conv="torch").eval()
    twin.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(5, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), twin(x), atol=1e-4, rtol=1e-4)


def test_checkpoint_round_trip_rebuilds_without_flags(tmp_path):
    model = LetterCNN(batch_norm=False, dropout=0.25).eval()
    torch.save(checkpoint_payload(model), tmp_path / "best.pt")
    again = LetterCNN.from_checkpoint(tmp_path)  # a run folder resolves to best.pt
    assert again.config == ModelConfig(batch_norm=False, dropout=0.25)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), again(x))


def test_fuse_folds_batch_norm_away_and_keeps_the_logits():
    torch.manual_seed(0)
    model = LetterCNN(dropout=0.3).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.running_mean.normal_(0.0, 0.5)
                module.running_var.uniform_(0.25, 4.0)
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        before = model(x)
        fused = model.fuse()
        assert fused is model and not model.training
        assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())
        torch.testing.assert_close(model(x), before, atol=1e-4, rtol=1e-4)


def test_a_checkpoint_records_its_input_spec_and_older_ones_get_the_default(tmp_path):
    spec = InputSpec(margin=3)
    payload = checkpoint_payload(LetterCNN(), spec)
    assert input_spec(payload) == spec
    del payload["input_spec"]
    assert input_spec(payload) == DEFAULT_SPEC


def test_foreign_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(bad)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a lettercnn checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        LetterCNN.from_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        LetterCNN.from_checkpoint(tmp_path)


@pytest.mark.parametrize("dropout", [-0.1, 1.0])
def test_dropout_out_of_range_is_rejected(dropout):
    with pytest.raises(ValueError, match="dropout must be in"):
        LetterCNN(dropout=dropout)
