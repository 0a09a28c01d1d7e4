"""Strict conversion of YAML data to a typed :class:`~edge_runtime.typed_struct.Struct`, or :class:`Invalid`.

``convert(data, tp)`` checks ``data`` against the type ``tp`` and returns the typed value: structs
from mappings (every key a field, unknown keys refused when the struct forbids them, missing
required fields refused, defaults filled), ``list[T]``, fixed ``tuple[A, B]``, ``dict[str, T]``,
``Literal``, unions, ``Any``, and numbers bounded by the ``Meta`` in ``Annotated[...]``. The scalar
types are strict (:mod:`edge_runtime.typed_scalars`, where :class:`Invalid` is declared); an int keeps
its type where the field also takes an int (``int | float``).

A union picks its member by the kind of the value (null, bool, int, float, text, list, mapping), so
a bad value is refused by the member of its kind. The first problem found (keys in the order
written, then missing fields) is raised as :class:`Invalid` with its path from the top; the message
is :mod:`edge_runtime.typed_config`'s business. The rules are those the configs had before this
module replaced a library (edge_runtime/typed_struct.py says which, and why).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from edge_runtime.typed_scalars import (
    COMPARE,
    Invalid,
    convert_any,
    convert_bool,
    convert_none,
    convert_str,
    literal_converter,
    number_converter,
)
from edge_runtime.typed_struct import Meta, Struct, fields, new_instance

UNIONS = (Union, types.UnionType)  # Union[A, B] and A | B
ARRAYS = (list, tuple, set, frozenset)  # what a list (or a variable-length tuple) is taken from


def convert(data: Any, tp: Any) -> Any:
    """``data`` as type ``tp`` (see the module docstring); :class:`Invalid` when it does not fit."""
    return converter(tp)(data)


@functools.cache
def converter(tp: Any) -> Callable[[Any], Any]:
    """The conversion function of ``tp``, worked out once per type."""
    members = _members(tp, [])
    return _leaf(*members[0]) if len(members) == 1 else _union(members)


def _members(tp: Any, metas: list) -> list[tuple[Any, list]]:
    """(plain type, the Meta that apply to it) of ``tp``, through Annotated and nested unions."""
    while get_origin(tp) is Annotated:
        tp, *extras = get_args(tp)
        metas = [*metas, *(m for m in extras if isinstance(m, Meta))]
    if get_origin(tp) in UNIONS:
        return [member for arg in get_args(tp) for member in _members(arg, metas)]
    return [(tp, metas)]


def _kind(value: Any) -> str | None:
    """Which member of a union a value goes to."""
    if value is None:
        return "none"
    if value is True or value is False:
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, ARRAYS):
        return "array"
    if isinstance(value, (Mapping, Struct)):
        return "object"
    return None


def _type_kind(tp: Any) -> str:
    origin = get_origin(tp) or tp
    if tp is type(None) or tp is None:
        return "none"
    if tp in (bool, int, float, str):
        return tp.__name__
    if origin in (list, tuple):
        return "array"
    if origin is dict or (isinstance(tp, type) and issubclass(tp, Struct)):
        return "object"
    if tp is Any or tp is object:
        return "any"
    raise TypeError(f"Type '{tp!r}' is not supported")


def _union(members: list[tuple[Any, list]]) -> Callable[[Any], Any]:
    by_kind: dict[str, list] = {}
    literals: dict[str, list] = {}  # Literal['a'] | Literal['b', 1]: one literal per kind of value
    for tp, metas in members:
        if get_origin(tp) is Literal:
            for value in get_args(tp):
                literals.setdefault("str" if isinstance(value, str) else "int", []).append(value)
        else:
            by_kind.setdefault(_type_kind(tp), []).append((tp, metas))
    for kind, values in literals.items():
        by_kind.setdefault(kind, []).append((Literal[tuple(values)], []))
    if "any" in by_kind:
        return convert_any
    table = {}
    for kind, found in by_kind.items():
        if len(found) > 1:
            raise TypeError(f"Type unions may not contain more than one {kind} type: {found}")
        table[kind] = _leaf(*found[0])
    if "int" not in table and "float" in table:
        table["int"] = table["float"]  # an int is taken for a float

    def convert_union(value: Any) -> Any:
        convert_member = table.get(_kind(value))
        if convert_member is None:
            raise Invalid("value")
        try:
            return convert_member(value)
        except Invalid as exc:
            if exc.kind == "object" and not exc.path:  # another struct's instance: the union's own miss
                exc.kind = "value"
            raise

    return convert_union


def _leaf(tp: Any, metas: list) -> Callable[[Any], Any]:
    bounds = [(name, getattr(m, name)) for m in metas for name in COMPARE if getattr(m, name) is not None]
    if tp is int or tp is float:
        return number_converter(tp, bounds)
    if bounds:
        raise TypeError(f"Bounds {bounds} apply to int and float only, not to {tp!r}")
    origin = get_origin(tp)
    if tp is Any or tp is object:
        return convert_any
    if tp is type(None) or tp is None:
        return convert_none
    if tp is bool:
        return convert_bool
    if tp is str:
        return convert_str
    if origin is Literal:
        return literal_converter(get_args(tp))
    if tp is list or origin is list:
        return _list(converter((get_args(tp) or (Any,))[0]))
    if tp is tuple or origin is tuple:
        return _tuple(get_args(tp))
    if tp is dict or origin is dict:
        key, value = get_args(tp) or (Any, Any)
        return _dict(converter(key), converter(value))
    if isinstance(tp, type) and issubclass(tp, Struct):
        return _struct(tp)
    raise TypeError(f"Type '{tp!r}' is not supported")


def _at(token: Any, convert_item: Callable[[Any], Any], item: Any) -> Any:
    try:
        return convert_item(item)
    except Invalid as exc:
        exc.path.insert(0, token)
        raise


def _list(convert_item: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert_list(value: Any) -> list:
        if not isinstance(value, ARRAYS):
            raise Invalid("value")
        return [_at(index, convert_item, item) for index, item in enumerate(value)]

    return convert_list


def _tuple(args: tuple) -> Callable[[Any], Any]:
    if not args or (len(args) == 2 and args[1] is Ellipsis):  # tuple, tuple[T, ...]
        items = _list(converter(args[0] if args else Any))
        return lambda value: tuple(items(value))
    converters = [converter(arg) for arg in args]

    def convert_tuple(value: Any) -> tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(converters):
            raise Invalid("value")
        return tuple(
            _at(index, convert, item)
            for index, (convert, item) in enumerate(zip(converters, value, strict=True))
        )

    return convert_tuple


def _dict(convert_key: Callable[[Any], Any], convert_value: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert_dict(value: Any) -> dict:
        if not isinstance(value, Mapping):
            raise Invalid("object")
        out = {}
        for key, item in value.items():
            try:
                key = convert_key(key)
            except Invalid:
                raise Invalid("key") from None
            out[key] = _at(None, convert_value, item)
        return out

    return convert_dict


def _struct(cls: type) -> Callable[[Any], Any]:
    table: dict[str, Callable[[Any], Any]] = {}  # filled at the first use: the types may refer to cls

    def convert_struct(value: Any) -> Any:
        if type(value) is cls:
            return value
        if not isinstance(value, Mapping):
            raise Invalid("object")
        infos = fields(cls)
        if not table:
            table.update((info.name, converter(info.type)) for info in infos)
        values = {}
        for key, item in value.items():
            if type(key) is not str:
                raise Invalid("key")
            convert_field = table.get(key)
            if convert_field is None:
                if cls._forbid_unknown_fields:
                    raise Invalid("unknown", key)
                continue
            values[key] = _at(key, convert_field, item)
        for info in infos:
            if info.name not in values and info.required:
                raise Invalid("missing", info.name)
        return new_instance(cls, values)

    return convert_struct
