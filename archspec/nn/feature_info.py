"""timm's ``FeatureInfo``: what each feature map of a model is, without depending on timm."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class FeatureInfo(list[dict[str, Any]]):
    """Per feature map: ``num_chs``, ``reduction`` (stride from the input), ``module`` and ``stage``.

    A list of dicts (as timm keeps on its classifiers) with the accessors of timm's ``FeatureInfo``:
    ``channels()``, ``reduction()``, ``module_name()``, ``get(key, idx)`` and ``get_dicts()``; ``idx``
    is an index or a list of them, None for all.
    """

    def __init__(self, maps: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__(maps)

    @property
    def out_indices(self) -> tuple[int, ...]:
        return tuple(range(len(self)))

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        if idx is None:
            return [info[key] for info in self]
        if isinstance(idx, int):
            return self[idx][key]
        return [self[i][key] for i in idx]

    def get_dicts(self, keys: Sequence[str] | None = None, idx: int | Sequence[int] | None = None) -> Any:
        def pick(info: dict[str, Any]) -> dict[str, Any]:
            return dict(info) if keys is None else {key: info[key] for key in keys}

        if idx is None:
            return [pick(info) for info in self]
        if isinstance(idx, int):
            return pick(self[idx])
        return [pick(self[i]) for i in idx]

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("module", idx)
