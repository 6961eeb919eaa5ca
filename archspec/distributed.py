"""Helpers for training built models with torch.distributed: DDP as is, FSDP2 one block at a time.

Built models need nothing special under ``DistributedDataParallel``: every parameter takes part in
every forward pass (``archspec build --check-grad`` checks it), so ``find_unused_parameters`` stays
off. For FSDP2, :func:`fsdp_policy` lists the modules to shard separately, one per residual block
and class-attention block, and :func:`fully_shard_model` applies ``fully_shard`` to them and then to
the root.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from archspec.nn import FlowBlock


def fsdp_policy(model: nn.Module) -> list[nn.Module]:
    """The modules to wrap one by one with FSDP2's ``fully_shard``: every block, the head's too, in order."""
    return [module for module in model.modules() if isinstance(module, FlowBlock)]


def fully_shard_model(model: nn.Module, **kwargs: Any) -> nn.Module:
    """Shard ``model`` with FSDP2: each module of :func:`fsdp_policy`, then the root. Keyword arguments
    (``mesh``, ``mp_policy``, ``reshard_after_forward``, ...) go to every ``fully_shard`` call."""
    from torch.distributed.fsdp import fully_shard

    for module in fsdp_policy(model):
        fully_shard(module, **kwargs)
    fully_shard(model, **kwargs)
    return model
