"""Token mixers whose weights act along the token axis: MLP-Mixer's token MLP and ResMLP's token Linear.

Both read tokens (B, N, C) and apply Linears over N, the same for every channel, so their weights
have one row per token: a model built for one token count cannot run on another.
"""

from __future__ import annotations

import torch
import torch.fx
from torch import nn


def check_tokens(module: str, built: int, x: torch.Tensor) -> None:
    """Refuse tokens ``x`` (B, N, C) whose count N is not the ``built`` one.

    A free function that FX records as one call (``torch.fx.wrap``): the count is a traced value there,
    which Python cannot branch on.
    """
    if x.shape[1] != built:
        raise ValueError(
            f"{module} was built for {built} tokens, got {x.shape[1]}: its weights act along the token axis, "
            "so the input size must be the one it was planned for"
        )


torch.fx.wrap("check_tokens")


class TokenMlp(nn.Module):
    """fc1 (N → hidden) → act → fc2 (hidden → N) over the token axis, for each channel alike (MLP-Mixer).

    Args:
        tokens: the token count N the Linears are made for.
        hidden: the width between the two Linears.
        act: the activation module (GELU when None).
        bias: whether the Linears have biases.
    """

    def __init__(self, tokens: int, hidden: int, act: nn.Module | None = None, bias: bool = True) -> None:
        super().__init__()
        self.tokens = tokens
        self.fc1 = nn.Linear(tokens, hidden, bias=bias)
        self.act = act if act is not None else nn.GELU()
        self.fc2 = nn.Linear(hidden, tokens, bias=bias)

    def forward(self, x: torch.Tensor, hw: tuple[int, int] | None = None) -> torch.Tensor:  # x: (B, N, C)
        check_tokens("TokenMlp", self.tokens, x)
        x = x.transpose(1, 2)  # (B, C, N): each channel's tokens are one row for the Linears
        x = self.fc2(self.act(self.fc1(x)))  # (B, C, N)
        return x.transpose(1, 2)  # (B, N, C)


class TokenLinear(nn.Module):
    """One Linear (N → N) over the token axis, for each channel alike (ResMLP's token mixer).

    Args:
        tokens: the token count N the Linear is made for.
        bias: whether the Linear has a bias.
    """

    def __init__(self, tokens: int, bias: bool = True) -> None:
        super().__init__()
        self.tokens = tokens
        self.fc = nn.Linear(tokens, tokens, bias=bias)

    def forward(self, x: torch.Tensor, hw: tuple[int, int] | None = None) -> torch.Tensor:  # x: (B, N, C)
        check_tokens("TokenLinear", self.tokens, x)
        return self.fc(x.transpose(1, 2)).transpose(1, 2)  # (B, C, N) through the Linear, back to (B, N, C)
