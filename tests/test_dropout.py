"""sepkit.dropout: the cheap CPU dropout keeps F.dropout's distribution, gradients and reproducibility."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sepkit.dropout import Dropout, attention_with_dropout, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_mask_keeps_each_element_with_probability_one_minus_p(p):
    mask = keep_mask((1000, 1000), p, torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.shape == (1000, 1000)
    assert abs(mask.float().mean().item() - (1 - p)) < 0.002  # 1e6 draws: std 0.0005


def test_keep_mask_lanes_are_independent_of_their_position_in_the_word():
    mask = keep_mask((400_000,), 0.5, torch.Generator().manual_seed(1))
    for lane in range(4):  # each 64-bit word feeds 4 consecutive elements
        assert abs(mask[lane::4].float().mean().item() - 0.5) < 0.005
    pairs = mask[0::4] & mask[1::4]  # neighbours from one word are independent
    assert abs(pairs.float().mean().item() - 0.25) < 0.005


@pytest.mark.parametrize("shape", [(3,), (2, 5, 7), (1, 1, 1, 9)])
def test_masks_of_any_size_have_the_shape_asked_for(shape):
    assert keep_mask(shape, 0.3).shape == shape


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_zeroes_or_scales_each_element_like_f_dropout(dtype):
    x = torch.rand(64, 512, dtype=dtype) + 0.5
    y = dropout(x, 0.25)
    assert y.dtype == dtype and y.shape == x.shape
    kept = y != 0
    scale = torch.tensor(1 / 0.75, dtype=dtype)  # F.dropout scales in the input's dtype on CPU
    torch.testing.assert_close(y[kept], x[kept] * scale, rtol=0, atol=0)
    assert abs(kept.float().mean().item() - 0.75) < 0.01
    assert abs(y.float().mean().item() / x.float().mean().item() - 1) < 0.02  # unbiased like F.dropout


def test_gradient_is_the_mask_times_the_scale():
    x = torch.randn(32, 100, requires_grad=True)
    y = dropout(x, 0.5)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y.detach() != 0).float() * 2.0)


def test_the_same_seed_gives_the_same_mask_and_draws_advance_the_generator():
    torch.manual_seed(3)
    a, b = dropout(torch.ones(1000), 0.5), dropout(torch.ones(1000), 0.5)
    torch.manual_seed(3)
    assert torch.equal(dropout(torch.ones(1000), 0.5), a)
    assert not torch.equal(a, b)


def test_off_in_evaluation_and_the_edge_probabilities():
    x = torch.randn(10, 10)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            dropout(x, p)
        with pytest.raises(ValueError, match="between 0 and 1"):
            Dropout(p)


def test_module_follows_train_and_eval_and_has_no_state():
    layer = Dropout(0.5)
    x = torch.ones(100, 100)
    assert not torch.equal(layer(x), x)
    layer.eval()
    assert layer(x) is x
    assert layer.state_dict() == {} and "p=0.5" in repr(layer)


def test_attention_without_dropout_is_scaled_dot_product_attention():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    attend = torch.rand(2, 1, 5, 5, generator=g) > 0.3
    attend[..., 0] = True  # every query sees at least one key
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
    torch.testing.assert_close(attention_with_dropout(q, k, v, attend, 0.0), want)
    torch.testing.assert_close(attention_with_dropout(q, k, v, None, 0.0), F.scaled_dot_product_attention(q, k, v))


def test_attention_dropout_averages_to_the_attention_output():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 1, 4, 8, generator=g) for _ in range(3))
    want = F.scaled_dot_product_attention(q, k, v)
    torch.manual_seed(0)
    mean = torch.stack([attention_with_dropout(q, k, v, None, 0.2) for _ in range(4000)]).mean(0)
    torch.testing.assert_close(mean, want, atol=0.05, rtol=0)
