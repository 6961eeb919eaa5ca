"""Spec fields that hold a component: ``Slot[MixerSpec]`` accepts whatever is registered under that kind.

A slot looks its ``type:`` up in the registry *when the spec is validated*, so components registered
after a spec class is defined (plugins, tests) are accepted too, and a bare type name is shorthand for
the component at its defaults (``norm: batchnorm``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

from archspec.registry import components, get, names

if TYPE_CHECKING:
    from archspec.specbase import ComponentSpec


def default_component(kind: str, name: str, **fields: Any) -> Any:
    """A ``default_factory``: component ``name`` of ``kind`` with ``fields`` set, looked up when first needed."""

    def make() -> Any:
        return get(kind, name).model_validate({"type": name, **fields})

    return make


class _SlotSchema:
    """Validates a slot by looking its ``type:`` up in the registry at validation time.

    A bare string is shorthand for a component at its defaults (``norm: batchnorm``).
    """

    def __init__(self, kind: str, base: type[ComponentSpec]) -> None:
        self.kind, self.base = kind, base

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        kind, base = self.kind, self.base

        def validate(value: Any) -> ComponentSpec:
            if isinstance(value, base):
                return value
            if isinstance(value, str):
                value = {"type": value}
            if not isinstance(value, dict):
                raise PydanticCustomError("model_type", "expected a mapping with a 'type' key")
            valid = names(kind)
            if "type" not in value:
                raise PydanticCustomError("union_tag_not_found", "missing 'type'", {"kind": kind, "valid": valid})
            tag = value["type"]
            if not isinstance(tag, str) or tag not in valid:
                context = {"kind": kind, "valid": valid, "tag": str(tag)}
                raise PydanticCustomError("union_tag_invalid", "unknown {kind} type", context)
            return get(kind, tag).model_validate(value)

        def serialize(value: ComponentSpec, info: core_schema.SerializationInfo) -> Any:
            # The type tag is what the user chose even where it is the subclass's default: always keep it.
            return {"type": value.type, **value.model_dump(mode=info.mode, exclude_defaults=info.exclude_defaults)}

        serializer = core_schema.plain_serializer_function_ser_schema(serialize, info_arg=True)
        return core_schema.no_info_plain_validator_function(validate, serialization=serializer)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        from pydantic import TypeAdapter

        members = tuple(components(self.kind))
        union: Any = members[0] if len(members) == 1 else Annotated[Union[members], Field(discriminator="type")]  # noqa: UP007
        full = handler(TypeAdapter(union).core_schema)
        # A bare type name is shorthand for the component at its defaults (``norm: batchnorm``).
        return {"anyOf": [full, {"enum": [cls.type_name() for cls in members]}]}


if TYPE_CHECKING:
    _T = TypeVar("_T")
    Slot = Annotated[_T, "slot"]
else:

    class Slot:
        """``Slot[MixerSpec]``: a field holding any component registered under that base's kind."""

        def __class_getitem__(cls, base: type[ComponentSpec]) -> Any:
            return Annotated[base, _SlotSchema(base.kind, base)]
