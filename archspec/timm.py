"""Register archspec specs as timm models, so ``timm.create_model`` and timm's training scripts build them.

timm is optional: nothing else in archspec imports it, and :func:`register` says how to install it
when it is missing. Names are ``archspec_`` and the spec's name with every run of other characters
than letters and digits turned into ``_`` (``spectformer-h-s`` → ``archspec_spectformer_h_s``): timm
reads ``/`` and ``:`` in a model name as a Hub repo or a local folder, and ``.`` as a weights tag.

    import archspec.timm, timm
    archspec.timm.register()
    model = timm.create_model("archspec_spectformer_h_s", num_classes=10, drop_path_rate=0.1)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archspec.errors import ArchspecError
from archspec.models import create_model, list_specs, resolve_spec_path

PREFIX = "archspec_"

# timm's create_model arguments that archspec maps onto its own ones or onto spec fields.
_TO_SETS: dict[str, Callable[[Any], list[str]]] = {
    "in_chans": lambda value: [f"input.channels={int(value)}"],
    "img_size": lambda value: [f"input.size={list(value) if isinstance(value, list | tuple) else int(value)}"],
    "drop_path_rate": lambda value: [f"drop_path_rate={float(value)}"],
}
# Passed by timm.create_model whatever the model; archspec builds on the CPU and needs none of them.
_IGNORED = ("cache_dir", "pretrained_model_args")


def timm_name(spec: str | Path) -> str:
    """The name a spec is registered under: ``archspec_`` + its file name's stem, made timm-safe."""
    return PREFIX + re.sub(r"[^0-9A-Za-z]+", "_", Path(spec).stem).strip("_").lower()


def _entrypoint(spec: str | Path, name: str) -> Callable[..., Any]:
    def create(
        pretrained: bool = False,
        pretrained_cfg: Any = None,
        pretrained_cfg_overlay: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        weights = (pretrained_cfg_overlay or {}).get("file")
        if pretrained and not weights:
            raise ValueError(
                f"{name}: archspec specs ship no weights; pass pretrained_cfg_overlay=dict(file=PATH) with a "
                "checkpoint (archspec's, timm's or the official code's), or checkpoint_path=PATH for archspec's names"
            )
        sets: list[str] = []
        for key, to_sets in _TO_SETS.items():
            if kwargs.get(key) is not None:
                sets += to_sets(kwargs.pop(key))
        drop_rate = kwargs.pop("drop_rate", None)
        if drop_rate:  # timm's scripts always pass it (0.0 by default)
            if not _head_has_drop(spec):
                raise ValueError(
                    f"{name}: drop_rate={drop_rate} needs a head with dropout (pool or token); this one has none"
                )
            sets.append(f"head.drop={float(drop_rate)}")
        options = {key: kwargs.pop(key) for key in ("num_classes", "features_only", "out_indices") if key in kwargs}
        global_pool = kwargs.pop("global_pool", None)
        device = kwargs.pop("device", None) or "cpu"
        for key in _IGNORED:
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"{name}: unexpected arguments {', '.join(sorted(kwargs))}")
        model = create_model(spec, pretrained=weights if pretrained else None, overrides=sets, device=device, **options)
        if global_pool is not None and global_pool != getattr(model, "global_pool", global_pool):
            raise ValueError(f"{name} pools by {model.global_pool!r}; global_pool={global_pool!r} needs another head")
        return model

    create.__name__ = create.__qualname__ = name
    create.__module__ = __name__
    create.__doc__ = f"archspec spec {spec} (see archspec.timm)."
    return create


def _head_has_drop(spec: str | Path) -> bool:
    from archspec.spec import load_spec

    return "drop" in type(load_spec(spec).spec.head).model_fields


# timm name → the spec file registered under it, so a second file cannot take a name silently.
_REGISTERED: dict[str, Path] = {}


def register(*specs: str | Path) -> list[str]:
    """Register shipped specs by name (all of them when none is given) or spec files with timm.

    Returns:
        The timm model names, in the order given.

    Raises:
        ArchspecError: timm is not installed, a spec is neither a file nor a shipped name, or its name
            is taken by another spec file or by one of timm's own models.
    """
    try:
        from timm.models import is_model, register_model
    except ImportError:
        raise ArchspecError("archspec.timm.register needs timm: pip install timm") from None
    names = []
    exported = list(__all__)
    try:
        for spec in specs or tuple(list_specs()):
            path = resolve_spec_path(spec).resolve()
            name = timm_name(path)
            if _REGISTERED.get(name) == path:
                names.append(name)
                continue
            if name in _REGISTERED or is_model(name):
                taken = _REGISTERED.get(name, "one of timm's models")
                raise ArchspecError(f"cannot register {path} as {name!r} with timm: {taken} has that name")
            register_model(_entrypoint(path, name))
            _REGISTERED[name] = path
            names.append(name)
    finally:
        __all__[:] = exported  # timm's register_model lists every model in its module's __all__
    return names


__all__ = ["PREFIX", "register", "timm_name"]
