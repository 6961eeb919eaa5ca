"""The plain modules against straightforward reference formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny

import archspec
from archspec.nn import Attention, ClassAttention, DropPath, SpectralGatingNetwork
from archspec.nn.backbone import InputShapeError


def test_attention_matches_explicit_softmax():
    attn = Attention(dim=16, heads=4).eval()
    x = torch.randn(2, 10, 16)
    q = attn.q(x).reshape(2, 10, 4, 4).transpose(1, 2)
    k, v = attn.kv(x).reshape(2, 10, 2, 4, 4).permute(2, 0, 3, 1, 4)
    weights = (q @ k.transpose(-2, -1) * 4**-0.5).softmax(-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, 10, 16))
    torch.testing.assert_close(attn(x), expected)


def test_class_attention_matches_explicit_softmax():
    attn = ClassAttention(dim=8, heads=2)
    x = torch.randn(3, 5, 8)
    q = attn.q(x[:, :1]).reshape(3, 1, 2, 4).transpose(1, 2)  # (B, h, 1, d)
    k, v = attn.kv(x).reshape(3, 5, 2, 2, 4).permute(2, 0, 3, 1, 4)
    weights = (q @ k.transpose(-2, -1) * 4**-0.5).softmax(-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(3, 1, 8))
    torch.testing.assert_close(attn(x), expected)


def _backward_nodes(out: torch.Tensor) -> list[str]:
    """The names of every node of ``out``'s autograd graph."""
    names, stack, seen = [], [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        stack.extend(parent for parent, _ in node.next_functions)
    return names


ATTENTIONS = {
    "fused": lambda x: Attention(16, 2, fused=True)(x),
    "separate": lambda x: Attention(16, 2)(x),
    "reduced": lambda x: Attention(16, 2, sr_ratio=2, sr_norm=torch.nn.LayerNorm(16))(x[:, 1:], (4, 4)),
    "class": lambda x: ClassAttention(16, 2)(x),
}


@pytest.mark.parametrize("name", ATTENTIONS)
def test_attention_splits_its_projections_with_one_unbind(name):
    """Indexing q, k and v out of one projection would give the backward a zero-filled tensor of the
    projection's whole size per index, and additions to merge them; one unbind writes them in place."""
    nodes = _backward_nodes(ATTENTIONS[name](torch.randn(2, 17, 16, requires_grad=True)))
    assert "SelectBackward0" not in nodes
    assert nodes.count("UnbindBackward0") == 1


def test_spectral_filter_is_a_circular_convolution():
    """With an all-ones filter the gating is the identity; the grid must match the filter."""
    mixer = SpectralGatingNetwork(dim=4, height=6, width=5, resize="strict")
    with torch.no_grad():
        mixer.complex_weight.zero_()
        mixer.complex_weight[..., 0] = 1.0
    x = torch.randn(2, 30, 4)
    torch.testing.assert_close(mixer(x, (6, 5)), x, atol=1e-5, rtol=1e-5)
    assert tuple(mixer.complex_weight.shape) == (6, 3, 4, 2)
    try:
        mixer(torch.randn(2, 36, 4), (6, 6))
    except ValueError as exc:
        assert str(exc) == "SpectralGatingNetwork was built for a 6×5 token grid, got 6×6 (resize='strict')"
    else:
        raise AssertionError("a mismatched grid must be refused")


def test_spectral_runs_in_float32_under_bfloat16():
    mixer = SpectralGatingNetwork(dim=4, height=4, width=4).to(torch.bfloat16)
    x = torch.randn(1, 16, 4, dtype=torch.bfloat16)
    out = mixer(x, (4, 4))
    assert out.dtype == torch.bfloat16
    reference = SpectralGatingNetwork(dim=4, height=4, width=4)
    reference.complex_weight.data = mixer.complex_weight.data.float()
    torch.testing.assert_close(out.float(), reference(x.float(), (4, 4)), atol=2e-2, rtol=2e-2)


def test_drop_path():
    drop = DropPath(0.5)
    x = torch.ones(1000, 3)
    assert torch.equal(drop.eval()(x), x)
    kept = drop.train()(x)[:, 0]
    assert set(kept.unique().tolist()) == {0.0, 2.0}
    assert 400 < int((kept > 0).sum()) < 600
    assert repr(drop) == "DropPath()"


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((3, 32, 32), "Tiny expects a 4-D batch of images (B, 3, H, W), got a 3-D tensor of shape (3, 32, 32)"),
        (
            (1, 1, 3, 32, 32),
            "Tiny expects a 4-D batch of images (B, 3, H, W), got a 5-D tensor of shape (1, 1, 3, 32, 32)",
        ),
        ((2, 4, 32, 32), "Tiny expects 3 input channels (B, 3, H, W), got 4 in shape (2, 4, 32, 32)"),
        ((0, 3, 32, 32), "Tiny expects at least one image (B, 3, H, W), got an empty batch of shape (0, 3, 32, 32)"),
        ((1, 3, 0, 32), "Tiny expects images of at least one pixel (B, 3, H, W), got shape (1, 3, 0, 32)"),
    ],
)
def test_a_model_names_what_is_wrong_with_its_input(shape, message):
    model = archspec.build(archspec.plan(archspec.validate(tiny()))).eval()
    with pytest.raises(InputShapeError) as info:
        model(torch.randn(shape))
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)
    with pytest.raises(InputShapeError):
        model.forward_intermediates(torch.randn(shape), (0,))


def test_an_input_of_another_size_still_runs():
    model = archspec.build(archspec.plan(archspec.validate(tiny()))).eval()
    assert tuple(model(torch.randn(2, 3, 48, 40)).shape) == (2, 5)


def test_token_group_norm_equals_group_norm_and_keeps_tokens_contiguous():
    """The norm before PoolFormer's pooling: its output must stay contiguous tokens, so that the pooled
    grid view is channels-last (the fast path, about 9× faster than a channels-first pool here)."""
    from archspec.nn.norm import TokenGroupNorm

    norm = TokenGroupNorm(1, 8, eps=1e-6, bias=False)
    torch.nn.init.normal_(norm.weight)
    reference = torch.nn.GroupNorm(1, 8, eps=1e-6)
    reference.weight.data.copy_(norm.weight.data)
    torch.nn.init.zeros_(reference.bias)
    tokens = torch.randn(2, 12, 8)
    out = norm(tokens)
    assert out.is_contiguous()
    torch.testing.assert_close(out, reference(tokens.transpose(1, 2)).transpose(1, 2))
    pooled = torch.randn(3, 8)
    torch.testing.assert_close(norm(pooled), reference(pooled))
    assert "bias=False" in repr(norm) and repr(norm).count("bias=False") == 1


def test_afno_mixer_follows_the_papers_formula():
    """AFNO (Guibas et al., 2021): per frequency, a block-diagonal two-layer complex MLP, ReLU between,
    soft-shrinkage after, then the inverse FFT, added to the input; written here with complex products."""
    from archspec.nn.afno import AFNOMixer

    torch.manual_seed(0)
    dim, blocks, factor, sparsity, hw = 8, 2, 2, 0.01, (4, 6)
    mixer = AFNOMixer(dim, blocks, factor, sparsity)
    x = torch.randn(2, hw[0] * hw[1], dim)
    w1 = torch.complex(mixer.w1[0], mixer.w1[1])  # (k, s, s·f)
    b1 = torch.complex(mixer.b1[0], mixer.b1[1])
    w2 = torch.complex(mixer.w2[0], mixer.w2[1])
    b2 = torch.complex(mixer.b2[0], mixer.b2[1])
    spectrum = torch.fft.rfft2(x.reshape(2, *hw, dim), dim=(1, 2), norm="ortho")
    z = spectrum.reshape(2, hw[0], hw[1] // 2 + 1, blocks, dim // blocks)
    h = torch.einsum("bhfks,ksd->bhfkd", z, w1) + b1
    h = torch.complex(torch.relu(h.real), torch.relu(h.imag))  # ReLU on each part, as AFNO does
    o = torch.einsum("bhfkd,kds->bhfks", h, w2) + b2
    o = torch.complex(F.softshrink(o.real, sparsity), F.softshrink(o.imag, sparsity))
    expected = x + torch.fft.irfft2(o.reshape(2, hw[0], -1, dim), s=hw, dim=(1, 2), norm="ortho").reshape(x.shape)
    assert torch.allclose(mixer(x, hw), expected, atol=1e-6)
    assert (mixer.w1.shape, mixer.b2.shape) == ((2, blocks, 4, 8), (2, blocks, 4))


def test_affine_scales_and_shifts_each_channel_in_every_layout():
    from archspec.nn.norm import Affine

    torch.manual_seed(0)
    tokens, grid = Affine(3), Affine(3, grid=True)
    for norm in (tokens, grid):
        with torch.no_grad():
            norm.alpha.copy_(torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 3))
            norm.beta.copy_(torch.tensor([0.5, 0.0, -1.0]).view(1, 1, 3))
    x = torch.randn(2, 4, 3)
    expected = x * torch.tensor([1.0, 2.0, 3.0]) + torch.tensor([0.5, 0.0, -1.0])
    assert torch.allclose(tokens(x), expected)
    assert torch.allclose(tokens(x[:, 0]), expected[:, 0])  # a pooled (B, C) vector
    assert torch.allclose(grid(x.transpose(1, 2).reshape(2, 3, 2, 2)), expected.transpose(1, 2).reshape(2, 3, 2, 2))
