"""A straightforward SpectFormer-H written directly in PyTorch, as a yardstick for archspec's models.

It follows the official layout (state-dict keys keep the block mixer under ``attn``) with the plainest
possible forward passes: explicit softmax attention, view/permute between token and grid layouts.
The tests check that archspec's built models compute the same function; the benchmarks time both.
"""

from __future__ import annotations

import torch
from torch import nn


class Spectral(nn.Module):
    def __init__(self, dim: int, h: int, w: int, conv: bool) -> None:
        super().__init__()
        self.conv_input = nn.Conv2d(dim, dim, 3, padding=1) if conv else None
        self.conv_output = nn.Conv2d(dim, dim, 3, padding=1) if conv else None
        self.complex_weight = nn.Parameter(torch.randn(h, w // 2 + 1, dim, 2) * 0.02)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        if self.conv_input is not None:
            x = self.conv_input(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
        x = x.view(b, h, w, c).to(torch.float32)
        x = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
        x = x * torch.view_as_complex(self.complex_weight)
        x = torch.fft.irfft2(x, s=(h, w), dim=(1, 2), norm="ortho").reshape(b, n, c)
        if self.conv_output is not None:
            x = self.conv_output(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
        return x


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        d = c // self.heads
        q = self.q(x).reshape(b, n, self.heads, d).permute(0, 2, 1, 3)
        k, v = self.kv(x).reshape(b, n, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * d**-0.5).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class DepthwiseConv(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, c = x.shape
        return self.dwconv(x.transpose(1, 2).view(b, c, h, w)).flatten(2).transpose(1, 2)


class ConvFFN(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DepthwiseConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x), h, w)))


class Layer(nn.Module):
    def __init__(self, dim: int, mixer: nn.Module, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = mixer
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = ConvFFN(dim, hidden)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.mlp(self.norm2(x), h, w)


class Embed(nn.Module):
    def __init__(self, cin: int, dim: int, hidden: int | None) -> None:
        super().__init__()
        if hidden is not None:
            layers: list[nn.Module] = []
            for a, k, s in [(cin, 7, 2), (hidden, 3, 1), (hidden, 3, 1)]:
                layers += [
                    nn.Conv2d(a, hidden, k, s, k // 2, bias=False),
                    nn.BatchNorm2d(hidden),
                    nn.ReLU(inplace=True),
                ]
            self.conv = nn.Sequential(*layers)
            cin = hidden
        self.proj = nn.Conv2d(cin, dim, 3, 2, 1)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        if hasattr(self, "conv"):
            x = self.conv(x)
        x = self.proj(x)
        _, _, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class ClassLayer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.kv = nn.Linear(dim, 2 * dim)
        self.attn.q = nn.Linear(dim, dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential()
        self.mlp.fc1 = nn.Linear(dim, hidden)
        self.mlp.act = nn.GELU()
        self.mlp.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        d = c // self.heads
        y = self.norm1(x)
        k, v = self.attn.kv(y).reshape(b, n, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        q = self.attn.q(y[:, :1]).reshape(b, self.heads, 1, d)
        attn = (q * d**-0.5 @ k.transpose(-2, -1)).softmax(dim=-1)
        cls = x[:, :1] + self.attn.proj((attn @ v).transpose(1, 2).reshape(b, 1, c))
        cls = cls + self.mlp(self.norm2(cls))
        return torch.cat([cls, x[:, 1:]], dim=1)


class ReferenceSpectFormer(nn.Module):
    """SpectFormer-H (``stem_hidden`` stem, spectral stages 1–2, attention stages 3–4, class attention)."""

    def __init__(
        self,
        dims: tuple[int, ...] = (64, 128, 320, 448),
        depths: tuple[int, ...] = (3, 4, 6, 3),
        heads: tuple[int, ...] = (2, 4, 10, 14),
        ratios: tuple[float, ...] = (8, 8, 4, 4),
        stem_hidden: int = 32,
        num_classes: int = 1000,
        aux_head: bool = True,
        spectral_convs: bool = False,
        class_ratio: float | None = None,
        image: int = 224,
    ) -> None:
        super().__init__()
        self.stages = len(dims)
        grid = image // 4
        for i, dim in enumerate(dims):
            embed = Embed(3 if i == 0 else dims[i - 1], dim, stem_hidden if i == 0 else None)
            layers = []
            for _ in range(depths[i]):
                spectral = Spectral(dim, grid, grid, spectral_convs)
                mixer = spectral if i < 2 else SelfAttention(dim, heads[i])
                layers.append(Layer(dim, mixer, int(dim * ratios[i])))
            setattr(self, f"patch_embed{i + 1}", embed)
            setattr(self, f"block{i + 1}", nn.ModuleList(layers))
            setattr(self, f"norm{i + 1}", nn.LayerNorm(dim, eps=1e-6))
            grid //= 2
        hidden = int(dims[-1] * (class_ratio if class_ratio is not None else ratios[-1]))
        self.post_network = nn.ModuleList([ClassLayer(dims[-1], heads[-1], hidden)])
        self.head = nn.Linear(dims[-1], num_classes)
        self.aux_head = nn.Linear(dims[-1], num_classes) if aux_head else None

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        for i in range(1, self.stages + 1):
            x, h, w = getattr(self, f"patch_embed{i}")(x)
            for layer in getattr(self, f"block{i}"):
                x = layer(x, h, w)
            if i < self.stages:
                x = getattr(self, f"norm{i}")(x).reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)
        for layer in self.post_network:
            x = layer(x)
        x = getattr(self, f"norm{self.stages}")(x)
        logits = self.head(x[:, 0])
        if self.aux_head is None:
            return logits
        aux = self.aux_head(x[:, 1:])
        return (logits, aux) if self.training else logits + 0.5 * aux.max(dim=1).values


def spectformer_h_s(image: int = 224) -> ReferenceSpectFormer:
    return ReferenceSpectFormer(image=image)


def documented_spectformer(image: int = 224) -> ReferenceSpectFormer:
    """The seed's SpectFormer: MLP ratio 1, 3×3 convs around the spectral filter, 6 classes, class FFN ×4."""
    return ReferenceSpectFormer(
        ratios=(1, 1, 1, 1), num_classes=6, aux_head=False, spectral_convs=True, class_ratio=4, image=image
    )


def from_archspec(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """archspec keys → reference keys (block mixers live under ``attn`` here)."""
    import re

    return {re.sub(r"^(block\d+\.\d+)\.m\.", r"\1.attn.", k): v for k, v in state_dict.items()}
