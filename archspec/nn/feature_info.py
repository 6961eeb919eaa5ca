"""timm's ``FeatureInfo``: what each feature map of a model is, without depending on timm."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class FeatureInfo(list[dict[str, Any]]):
    """Per feature map: ``num_chs``, ``reduction`` (stride from the input), ``module`` and ``stage``.

    A list of the dicts of the maps a model returns (as timm keeps on its classifiers), with the
    accessors of timm's ``FeatureInfo``: ``out_indices``, ``channels()``, ``reduction()``,
    ``module_name()``, ``get(key, idx)`` and ``get_dicts()``. As in timm, ``idx`` counts every stage
    (``channels(3)`` is stage 3's, whether it is returned or not), a list of them, or None for the
    returned ones.

    Args:
        stages: the dicts of every stage, in order.
        out_indices: the stages returned (0-based); None: all of them.
    """

    def __init__(self, stages: Iterable[dict[str, Any]] = (), out_indices: Sequence[int] | None = None) -> None:
        self.info = list(stages)
        self.out_indices = tuple(range(len(self.info)) if out_indices is None else out_indices)
        super().__init__(self.info[i] for i in self.out_indices)

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        if idx is None:
            return [info[key] for info in self]
        if isinstance(idx, int):
            return self.info[idx][key]
        return [self.info[i][key] for i in idx]

    def get_dicts(self, keys: Sequence[str] | None = None, idx: int | Sequence[int] | None = None) -> Any:
        def pick(info: dict[str, Any]) -> dict[str, Any]:
            return dict(info) if keys is None else {key: info[key] for key in keys}

        if idx is None:
            return [pick(info) for info in self]
        if isinstance(idx, int):
            return pick(self.info[idx])
        return [pick(self.info[i]) for i in idx]

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("module", idx)
