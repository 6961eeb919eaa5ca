"""Whole models: the :class:`Backbone` plus the head that reads its last tokens."""

from __future__ import annotations

import torch
from torch import nn

from archspec.nn.backbone import Backbone, Body


class PoolModel(Backbone):
    """Average the last tokens, apply the last stage's norm, then a Linear classifier (``head``)."""

    def __init__(self, body: Body, head: nn.Module) -> None:
        super().__init__(body)
        self.head = head

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, N, C)
        return self.head(self.final_norm(x.mean(dim=1)))


class ClassAttentionModel(Backbone):
    """SpectFormer-H's head: class-attention blocks over [mean token; tokens], then norm and Linear.

    The class token starts as the mean of the last stage's tokens. After ``post_network`` the last
    stage's norm is applied to all tokens and ``head`` reads the class token. With an ``aux_head``
    (token labelling), evaluation returns ``head(cls) + 0.5 * max_tokens(aux_head(tokens))`` and
    training returns both logits, ``(head(cls), aux_head(tokens))``, for a dense loss.
    """

    def __init__(self, body: Body, post_network: nn.ModuleList, head: nn.Module, aux_head: nn.Module | None) -> None:
        super().__init__(body)
        self.post_network = post_network
        self.head = head
        self.aux_head = aux_head

    def forward_head(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:  # x: (B, N, C)
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)  # (B, 1 + N, C)
        for block in self.post_network:
            x = block(x)
        x = self.final_norm(x)
        logits = self.head(x[:, 0])  # (B, classes)
        if self.aux_head is None:
            return logits
        aux = self.aux_head(x[:, 1:])  # (B, N, classes)
        if self.training:
            return logits, aux
        return logits + 0.5 * aux.max(dim=1).values
