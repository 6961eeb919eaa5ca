"""Whole models: the :class:`Backbone` plus the head that reads its last tokens."""

from __future__ import annotations

import operator

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


class ConvHead(nn.Module):
    """A 1×1 conv → norm → act on every token before the pooling (EfficientNet's ``conv_head``, ``bn2``).

    The conv keeps its (C_out, C_in, 1, 1) weight, as timm's does, and reads the tokens as a
    (B, C, N, 1) grid, on which a 1×1 conv and a BatchNorm act per token.
    """

    def __init__(self, conv: nn.Conv2d, norm: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.width = conv.out_channels
        self.conv = conv
        self.norm = norm
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, N, C)
        x = x.transpose(1, 2).unsqueeze(-1)  # (B, C, N, 1)
        x = self.act(self.norm(self.conv(x)))
        return x.squeeze(-1).transpose(1, 2)  # (B, N, C_out)


class PoolModel(Backbone):
    """Average the last tokens, then a classifier (``head``); the last stage's norm is applied after
    the pooling or, with ``norm_before_pool``, to every token before it. ``drop`` is dropout before
    the classifier. A ``conv_head`` (a :class:`ConvHead`) runs on the normed tokens before the pooling.

    With an :class:`MlpHead`, ``hidden_features`` makes its hidden layer part of the features: the
    classifier is ``fc2`` alone, ``drop`` comes before it, and without classes (``reset_classifier(0)``,
    ``forward_head(pre_logits=True)``) the hidden layer's output comes out, as timm's MobileNetV3 and
    MaxViT give. Otherwise the whole MLP is the classifier, as in timm's MetaFormer."""

    global_pool = "avg"

    def __init__(
        self,
        body: Body,
        head: nn.Module,
        norm_before_pool: bool = False,
        drop: float = 0.0,
        conv_head: ConvHead | None = None,
        hidden_features: bool = False,
    ) -> None:
        super().__init__(body)
        self.conv_head = conv_head  # before the classifier, as it runs; None registers no module
        self.head = head
        self.norm_before_pool = norm_before_pool
        self.drop = drop
        self.hidden_features = hidden_features and isinstance(head, MlpHead)

    @property
    def num_features(self) -> int:
        """Channels the pooling reads: the conv head's width where there is one, else the last stage's."""
        if self.conv_head is None:
            return super().num_features
        return self.conv_head.width

    @property
    def head_hidden_size(self) -> int:
        """Width of ``forward_head(x, pre_logits=True)``: the hidden layer's with ``hidden_features``."""
        if self.hidden_features and isinstance(self.head, MlpHead):
            return int(getattr(self.head.fc1, "out_features"))  # noqa: B009
        return self.num_features

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:  # x: (B, N, C)
        """Tokens → logits; with ``pre_logits``, the (B, C) vector the classifier reads: pooled and
        normed, and through the hidden layer with ``hidden_features``."""
        if self.conv_head is not None:
            x = self.conv_head(self.final_norm(x)).mean(dim=1)
        elif self.norm_before_pool:
            x = self.final_norm(x).mean(dim=1)
        else:
            x = self.final_norm(x.mean(dim=1))
        if self.hidden_features and isinstance(self.head, MlpHead):
            x = self.head.norm(self.head.act(self.head.fc1(x)))
            return x if pre_logits else self.head.fc2(F.dropout(x, self.drop, self.training))
        if pre_logits:
            return x
        return self.head(F.dropout(x, self.drop, self.training))

    def get_classifier(self) -> nn.Module:
        return self.head.fc2 if isinstance(self.head, MlpHead) else self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier for ``num_classes`` classes (0 removes it: features come out)."""
        num_classes = _class_count(num_classes)
        _keep_pool(global_pool, self.global_pool)
        if isinstance(self.head, MlpHead) and (num_classes or self.hidden_features):
            self.head.fc2 = _classifier(self.head.fc2, num_classes)
        elif isinstance(self.head, MlpHead):  # no classes: the pooled features come out, as in timm
            self.head = _classifier(self.head.fc1, 0)
        else:
            self.head = _classifier(self.head, num_classes)


class TokenModel(Backbone):
    """Read the class token in front of the last tokens, after the last stage's norm, with a classifier."""

    global_pool = "token"

    def __init__(self, body: Body, head: nn.Module, drop: float = 0.0) -> None:
        super().__init__(body)
        self.head = head
        self.drop = drop

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:  # x: (B, 1 + N, C)
        """Tokens → logits; with ``pre_logits``, the normed class token (B, C) the classifier reads."""
        x = self.final_norm(x[:, 0])
        if pre_logits:
            return x
        return self.head(F.dropout(x, self.drop, self.training))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier for ``num_classes`` classes (0 removes it: the class token comes out)."""
        num_classes = _class_count(num_classes)
        _keep_pool(global_pool, self.global_pool)
        self.head = _classifier(self.head, num_classes)


class ClassAttentionModel(Backbone):
    """SpectFormer-H's and CaiT's head: class-attention blocks over [class token; tokens], then norm and Linear.

    The class token starts as the mean of the last stage's tokens, or, when ``cls_dim`` gives its width
    C, as the learned ``cls_token`` (1, 1, C) (CaiT). After ``post_network`` the last stage's norm is
    applied to all tokens and ``head`` reads the class token. With an ``aux_head``
    (token labelling) the model returns ``head(cls) + 0.5 * max_tokens(aux_head(tokens))``, in
    training as in evaluation, so every parameter gets a gradient from any loss on the output.
    :meth:`forward_aux` gives the two logits apart, ``(head(cls), aux_head(tokens))``, for a dense
    token-labelling loss; :class:`~archspec.nn.TokenLabelling` wraps a model so its forward does.
    """

    global_pool = "token"

    def __init__(
        self,
        body: Body,
        post_network: nn.ModuleList,
        head: nn.Module,
        aux_head: nn.Module | None,
        cls_dim: int | None = None,
    ) -> None:
        super().__init__(body)
        self.cls_token = None if cls_dim is None else nn.Parameter(torch.zeros(1, 1, cls_dim))
        if self.cls_token is not None and not self.cls_token.is_meta:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.post_network = post_network
        self.head = head
        self.aux_head = aux_head
        self.token_labelling = aux_head is not None  # kept across reset_classifier(0)

    def _class_and_tokens(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, C) → normed (B, 1 + N, C)
        cls = x.mean(dim=1, keepdim=True) if self.cls_token is None else self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)  # (B, 1 + N, C)
        for block in self.post_network:
            x, _ = block(x, (1, x.shape[1] - 1))  # class blocks read no grid: the tokens as one row
        return self.final_norm(x)

    def no_weight_decay(self) -> set[str]:
        """As every model's, and the learned class token, if there is one (as timm's CaiT)."""
        return super().no_weight_decay() | ({"cls_token"} if self.cls_token is not None else set())

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:  # x: (B, N, C)
        """Tokens → logits; with ``pre_logits``, the normed class token (B, C) the classifier reads."""
        x = self._class_and_tokens(x)
        if pre_logits:
            return x[:, 0]
        logits = self.head(x[:, 0])  # (B, classes)
        if self.aux_head is None:
            return logits
        return logits + 0.5 * self.aux_head(x[:, 1:]).max(dim=1).values

    def forward_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens → ``(head(cls), aux_head(tokens))``: (B, classes) and (B, N, classes)."""
        if self.aux_head is None:
            raise ValueError(f"{self.name} has no aux_head: set head.aux_head: true in the spec for token labelling")
        x = self._class_and_tokens(x)
        return self.head(x[:, 0]), self.aux_head(x[:, 1:])

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace ``head`` (and ``aux_head``) for ``num_classes`` classes (0: the class token comes out)."""
        num_classes = _class_count(num_classes)
        _keep_pool(global_pool, self.global_pool)
        self.head = _classifier(self.head, num_classes)
        if self.token_labelling:
            # Without classes there is nothing for token labelling to predict; with classes again, it returns.
            self.aux_head = _classifier(self.head, num_classes) if num_classes else None


def _class_count(num_classes: object) -> int:
    """``num_classes`` as an int, or ValueError naming it: a whole number from 0 (0: no classifier).

    A bool, a float (2.5, or 2.0) and a negative number are refused; an integer type that is not
    ``int`` (numpy's) is taken by its ``__index__``.
    """
    if not isinstance(num_classes, bool):
        try:
            count = operator.index(num_classes)  # type: ignore[arg-type]
        except TypeError:
            pass
        else:
            if count >= 0:
                return count
    raise ValueError(f"num_classes must be a whole number from 0 (0 removes the classifier), got {num_classes!r}")


def _keep_pool(asked: str | None, own: str) -> None:
    """timm's ``global_pool`` argument: only the head's own pooling is available."""
    if asked is not None and asked != own:
        raise ValueError(f"this head pools by {own!r}; global_pool={asked!r} would need another head type")


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
