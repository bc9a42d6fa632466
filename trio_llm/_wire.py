"""cattrs converters for provider JSON: the wire rules live here, not on the model classes.

Responses are structured leniently: unknown keys are ignored, so a provider adding a field
never breaks a stream; a value of the wrong type is a :class:`~trio_llm.ProtocolError` naming
the field.
"""

from __future__ import annotations

from typing import Any, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from ._errors import ProtocolError

__all__ = ["camel_case_converter", "snake_case_converter", "structure"]

T = TypeVar("T")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _is_list(type_: Any) -> bool:
    return get_origin(type_) is list


def _strict(converter: cattrs.Converter) -> cattrs.Converter:
    """Refuse wrong JSON types instead of coercing them (cattrs would turn ``5`` into
    ``"5"``, ``null`` into ``"None"`` and a string into a list of characters)."""

    def only(*kinds: type) -> Any:
        names = " or ".join(kind.__name__ for kind in kinds)

        def hook(value: Any, _type: Any) -> Any:
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise TypeError(f"expected {names}, got {type(value).__name__}")
            return value

        return hook

    converter.register_structure_hook(str, only(str))
    converter.register_structure_hook(bool, only(bool))
    converter.register_structure_hook(int, only(int))
    converter.register_structure_hook(float, only(int, float))

    def list_factory(list_type: Any) -> Any:
        args = get_args(list_type)
        item_type = args[0] if args else Any
        item_hook = converter.get_structure_hook(item_type)

        def hook(value: Any, _type: Any) -> list[Any]:
            if not isinstance(value, list):
                raise TypeError(f"expected a list, got {type(value).__name__}")
            return [item_hook(item, item_type) for item in value]

        return hook

    converter.register_structure_hook_factory(_is_list, list_factory)
    return converter


def _object_hook(cls: type[Any], structure_fn: Any) -> Any:
    def hook(value: Any, _type: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected a JSON object for {cls.__name__.lstrip('_')}, got {type(value).__name__}")
        return structure_fn(value, _type)

    return hook


def camel_case_converter() -> cattrs.Converter:
    """A strict converter for APIs whose JSON keys are camelCase (Google's):
    ``usage_metadata`` on the class reads ``usageMetadata`` on the wire."""
    converter = _strict(cattrs.Converter())

    def factory(cls: type[Any]) -> Any:
        overrides = {a.name: override(rename=_camel(a.name)) for a in attrs.fields(cls) if "_" in a.name}
        return _object_hook(cls, make_dict_structure_fn(cls, converter, **overrides))  # type: ignore[arg-type]

    converter.register_structure_hook_factory(attrs.has, factory)
    return converter


def snake_case_converter() -> cattrs.Converter:
    """A strict converter for APIs whose JSON keys are the field names (OpenAI-style)."""
    converter = _strict(cattrs.Converter())

    def factory(cls: type[Any]) -> Any:
        return _object_hook(cls, make_dict_structure_fn(cls, converter))

    converter.register_structure_hook_factory(attrs.has, factory)
    return converter


def _first_path(exc: BaseException) -> str:
    notes = [n for n in getattr(exc, "__notes__", ()) or () if "@ attribute" in n or "@ index" in n]
    path = ""
    if notes:
        path = notes[0].rsplit("@", 1)[1].strip()
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        inner = _first_path(exc.exceptions[0])
        if inner:
            path = f"{path} > {inner}" if path else inner
    return path


def structure(converter: cattrs.Converter, obj: Any, cls: type[T], *, provider: str, what: str) -> T:
    """Structure ``obj`` as ``cls``; a mismatch is a :class:`ProtocolError` naming the field."""
    try:
        return converter.structure(obj, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        where = _first_path(exc)
        detail = f" ({where})" if where else ""
        raise ProtocolError(f"unexpected shape of {what}{detail}", provider=provider) from exc
