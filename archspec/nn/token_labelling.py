"""Token labelling (LV-ViT, SpectFormer-H): train the class-token and the per-token classifiers apart."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archspec.nn.backbone import no_weight_decay_names
from archspec.nn.heads import ClassAttentionModel


class TokenLabelling(nn.Module):
    """Wraps a model with an ``aux_head`` so its forward returns both logits, for a dense loss.

    A built model returns one tensor in training and evaluation alike. Wrap it (before
    ``DistributedDataParallel``, so the forward DDP sees is this one) to train the token classifier
    on its own targets::

        trainer = TokenLabelling(model)
        logits, token_logits = trainer(images)  # (B, classes), (B, N, classes)
        loss = trainer.loss(logits, token_logits, labels)

    The wrapped model's parameters and state_dict keys are the wrapper's under ``model.``.
    """

    def __init__(self, model: nn.Module, aux_weight: float = 0.5) -> None:
        super().__init__()
        if not isinstance(model, ClassAttentionModel) or model.aux_head is None:
            name = getattr(model, "name", type(model).__name__)
            raise ValueError(
                f"{name} has no aux_head: token labelling needs head.type class_attention with aux_head: true"
            )
        self.model = model
        self.aux_weight = aux_weight

    def no_weight_decay(self) -> set[str]:
        """The wrapped model's, under ``model.``: the parameters trained without weight decay."""
        return no_weight_decay_names(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_aux(self.model.forward_features(x))

    def loss(
        self,
        logits: torch.Tensor,
        token_logits: torch.Tensor,
        labels: torch.Tensor,
        token_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cross-entropy of the class token plus ``aux_weight`` × that of the tokens.

        ``labels`` are class indices (B,) or soft targets (B, classes); ``token_labels`` are per-token
        targets, (B, N) indices or (B, N, classes) scores, and default to every token taking its
        image's label.
        """
        if token_labels is None:
            token_labels = labels.unsqueeze(1).expand(-1, token_logits.shape[1], *labels.shape[1:])
        flat_tokens = token_logits.flatten(0, 1)
        flat_labels = token_labels.flatten(0, 1)
        return F.cross_entropy(logits, labels) + self.aux_weight * F.cross_entropy(flat_tokens, flat_labels)
