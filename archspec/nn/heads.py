"""Whole models: the :class:`Backbone` plus the head that reads its last tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archspec.nn.backbone import Backbone, Body


class MlpHead(nn.Module):
    """fc1 → act → norm → fc2: a classifier with one hidden layer (ConvFormer and CAFormer heads)."""

    def __init__(self, fc1: nn.Module, act: nn.Module, norm: nn.Module, fc2: nn.Module) -> None:
        super().__init__()
        self.fc1 = fc1
        self.act = act
        self.norm = norm
        self.fc2 = fc2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(self.act(self.fc1(x))))


class PoolModel(Backbone):
    """Average the last tokens, then a classifier (``head``); the last stage's norm is applied after
    the pooling or, with ``norm_before_pool``, to every token before it. ``drop`` is dropout before
    the classifier."""

    def __init__(self, body: Body, head: nn.Module, norm_before_pool: bool = False, drop: float = 0.0) -> None:
        super().__init__(body)
        self.head = head
        self.norm_before_pool = norm_before_pool
        self.drop = drop

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, N, C)
        x = self.final_norm(x).mean(dim=1) if self.norm_before_pool else self.final_norm(x.mean(dim=1))
        return self.head(F.dropout(x, self.drop, self.training))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier for ``num_classes`` classes (0 removes it: features come out)."""
        if isinstance(self.head, MlpHead):
            self.head.fc2 = _classifier(self.head.fc2, num_classes)
        else:
            self.head = _classifier(self.head, num_classes)


class TokenModel(Backbone):
    """Read the class token in front of the last tokens, after the last stage's norm, with a classifier."""

    def __init__(self, body: Body, head: nn.Module, drop: float = 0.0) -> None:
        super().__init__(body)
        self.head = head
        self.drop = drop

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1 + N, C)
        return self.head(F.dropout(self.final_norm(x[:, 0]), self.drop, self.training))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier for ``num_classes`` classes (0 removes it: the class token comes out)."""
        self.head = _classifier(self.head, num_classes)


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

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``head`` (and ``aux_head``) for ``num_classes`` classes (0: the class token comes out)."""
        self.head = _classifier(self.head, num_classes)
        if self.aux_head is not None:
            # Without classes there is nothing for token labelling to predict.
            self.aux_head = _classifier(self.aux_head, num_classes) if num_classes else None


def _classifier(old: nn.Module, num_classes: int) -> nn.Module:
    dim = old.in_features if isinstance(old, nn.Linear) else int(getattr(old, "dim"))  # noqa: B009
    if num_classes == 0:
        identity = nn.Identity()
        setattr(identity, "dim", dim)  # noqa: B010  (remembered so a later reset can build a Linear again)
        return identity
    new = nn.Linear(dim, num_classes, device=next(old.parameters(), torch.empty(0)).device)
    nn.init.trunc_normal_(new.weight, std=0.02)
    nn.init.zeros_(new.bias)
    return new


class FeatureExtractor(Backbone):
    """The stages only, returning the feature maps of ``out_indices`` for detection or segmentation heads.

    ``feature_info`` gives, per returned map, its channels (``num_chs``), its stride from the input
    (``reduction``) and the module producing it.
    """

    def __init__(self, body: Body, out_indices: tuple[int, ...], channels: list[int], reductions: list[int]) -> None:
        super().__init__(body)
        if not out_indices or min(out_indices) < 0 or max(out_indices) >= self.num_stages:
            raise ValueError(f"out_indices {out_indices} must name stages 0–{self.num_stages - 1}")
        self.out_indices = tuple(out_indices)
        self.feature_info = [
            {"num_chs": channels[i], "reduction": reductions[i], "module": f"block{i + 1}"} for i in self.out_indices
        ]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        return self.forward_intermediates(x, self.out_indices)
