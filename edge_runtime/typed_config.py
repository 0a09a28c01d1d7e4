"""Typed configs: a YAML mapping -> a typed ``Struct`` (attribute access), or one ``ConfigError`` line.

Every file a person or a stage writes (runtime config, training config, case.yaml, model manifest)
is declared once as nested :class:`Section` structs: field names are the YAML keys, annotations
give the types and ranges, field defaults are *the* defaults. :func:`convert` checks a mapping
against such a struct (:mod:`edge_runtime.typed_convert`) and turns the first problem found (its
kind and key path) into the project's one-line shape naming the file and the full key path::

    config.yaml: config key 'overlay.alpha' must be a number in [0, 1], got 2

The wanted value ("a number in [0, 1]") is the ``description`` of the field's ``Meta``;
:class:`Wording` lets each file keep its own message shapes. A :class:`Rule` in a field's
``Annotated`` metadata adds a check that types cannot say (e.g. ``low <= high``).

Why hand-written (edge_runtime/typed_struct.py, edge_runtime/typed_convert.py,
edge_runtime/typed_scalars.py, standard library only): the runtime runs on a Jetson whose dependency
list allows only tensorrt, pycuda, numpy, opencv, av, pyyaml and onnxruntime; pydantic and msgspec
are not on it, and none of those does typed validation. The structs and the strict conversion follow msgspec's rules: strict types
(``true`` is not a number), unknown keys rejected, the key path of an error.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Mapping
from typing import Annotated, Any, get_args, get_origin

from edge_runtime.errors import ConfigError
from edge_runtime.typed_convert import UNIONS
from edge_runtime.typed_convert import convert as convert_strict
from edge_runtime.typed_scalars import Invalid
from edge_runtime.typed_struct import Meta, Struct, to_builtins
from edge_runtime.typed_struct import fields as struct_fields

MAX_SHOWN_CHARS = 60  # a fuzzed value can be huge: the one-line error stays readable
FLOAT_MAX = sys.float_info.max  # upper bound of "any number": rejects inf
INT_MAX = 2**53  # larger integers lose precision as floats (and overflow float())


class Section(Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every typed config: unknown keys rejected, attribute access. (``kw_only`` is not
    inherited: a struct with a required field after defaulted ones sets it itself.)"""


class Rule:
    """An extra check in ``Annotated[...]`` metadata, run after the types passed."""

    __slots__ = ("check",)

    def __init__(self, check: Callable[[Any], bool]):
        self.check = check


def number(want: str, integer: bool = False, **bounds: float) -> Any:
    """A number type (an int stays an int) with ``Meta`` bounds (``ge``, ``gt``, ``le``, ``lt``);
    ``want`` is the phrase of the error message. ``integer``: whole numbers only."""
    capped = "le" in bounds or "lt" in bounds
    whole = Annotated[int, Meta(**_int_bounds(bounds if capped else {"le": INT_MAX, **bounds}))]
    if integer:
        return Annotated[whole, Meta(description=want)]
    real = Annotated[float, Meta(**(bounds if capped else {"le": FLOAT_MAX, **bounds}))]
    return Annotated[whole | real, Meta(description=want)]


def _int_bounds(bounds: dict[str, float]) -> dict[str, int]:
    """The same range for whole numbers (int bounds on an int): ``gt=0.0`` -> ``ge=1``."""
    out = {}
    for name, value in bounds.items():
        if name == "ge":
            out["ge"] = math.ceil(value)
        elif name == "le":
            out["le"] = math.floor(value)
        elif name == "gt":
            out["ge"] = math.floor(value) + 1
        else:  # lt
            out["le"] = math.ceil(value) - 1
    return out


def described(tp: Any, want: str, *extra: Any) -> Any:
    """``tp`` with the phrase its error messages use (and optional :class:`Rule`)."""
    return Annotated[(tp, Meta(description=want), *extra)]


def as_dict(struct: Struct) -> dict[str, Any]:
    """A struct as plain builtins (YAML dumps, hashes, ``**kwargs``): the explicit edge."""
    return to_builtins(struct)


def shown(value: Any, limit: int = MAX_SHOWN_CHARS) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class Wording:
    """The message shapes of one file kind; override a method to keep a file's historic wording.
    ``key`` is the dotted key path ('overlay.alpha'), ``origin`` the file (or '<config>')."""

    def bad_value(self, origin: str, key: str, want: str, value: Any) -> str:
        return f"{origin}: config key '{key}' must be {want}, got {shown(value)}"

    def unknown(self, origin: str, key: str, known: list[str]) -> str:
        return f"{origin}: config key '{key}' is unknown (known: {', '.join(known)})"

    def missing(self, origin: str, key: str) -> str:
        return f"{origin}: missing key '{key}'"

    def not_mapping(self, origin: str, key: str, value: Any) -> str:
        return f"{origin}: config key '{key}' must be a mapping, got {shown(value)}"

    def bad_key(self, origin: str, key: str) -> str:
        where = f"config key '{key}'" if key else "the file"
        return f"{origin}: {where} has a key that is not text"


DEFAULT_WORDING = Wording()


def convert(data: Any, cls: type, origin: str, wording: Wording = DEFAULT_WORDING) -> Any:
    """``data`` (a mapping from YAML) -> an instance of struct ``cls``; ConfigError otherwise."""
    try:
        result = convert_strict(data, cls)
    except Invalid as exc:
        raise ConfigError(_message(exc, data, cls, origin, wording)) from None
    check_rules(result, origin, wording)
    return result


def check_rules(struct: Struct, origin: str, wording: Wording = DEFAULT_WORDING, prefix: str = "") -> None:
    """Run the :class:`Rule` checks of ``struct``'s fields (and nested structs')."""
    for name, rules, want in _rules(type(struct)):
        value = getattr(struct, name)
        for rule in rules:
            if not rule.check(value):
                raise ConfigError(wording.bad_value(origin, prefix + name, want, value))
        if isinstance(value, Struct):
            check_rules(value, origin, wording, f"{prefix}{name}.")


@functools.cache
def _rules(cls: type) -> tuple:
    """(field name, its Rules, its want phrase) of ``cls``: worked out once per struct type."""
    return tuple((info.name, tuple(_metadata(info.type, Rule)), describe(info.type)) for info in _fields(cls))


@functools.cache
def _fields(cls: type) -> tuple:
    """The field infos of ``cls`` (resolving the annotations costs ~0.1 ms a struct: once)."""
    return struct_fields(cls)


def describe(tp: Any) -> str:
    """The ``want`` phrase of a type (first ``Meta.description`` found), else its type name."""
    for meta in _metadata(tp, Meta):
        if meta.description:
            return meta.description
    return f"of type {getattr(tp, '__name__', tp)}"


def _metadata(tp: Any, kind: type) -> list:
    """``kind`` objects in the Annotated metadata of ``tp`` and of the members of its unions."""
    found: list = []
    if get_origin(tp) is Annotated:
        inner, *extras = get_args(tp)
        found += [m for m in extras if isinstance(m, kind)]
        found += _metadata(inner, kind)
    elif get_origin(tp) in UNIONS:
        for arg in get_args(tp):
            found += _metadata(arg, kind)
    return found


def _strip(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def struct_in(tp: Any) -> type | None:
    """The struct a field's type is, through Annotated and unions (``Section | None``); None for
    any other type."""
    tp = _strip(tp)
    if isinstance(tp, type) and issubclass(tp, Struct):
        return tp
    if get_origin(tp) in UNIONS:
        for arg in get_args(tp):
            found = struct_in(arg)
            if found is not None:
                return found
    return None


def _message(exc: Invalid, data: Any, cls: type, origin: str, wording: Wording) -> str:
    fields, field_type, value, struct = _walk(exc.path, cls, data)
    key = ".".join(fields)
    if exc.kind == "key":
        return wording.bad_key(origin, key)
    if exc.kind in ("unknown", "missing") and struct is not None:
        # the error is about the struct at the path itself: an unknown or a missing key
        sub = f"{key}.{exc.name}" if key else exc.name
        if exc.kind == "unknown":
            return wording.unknown(origin, sub, sorted(struct.__struct_fields__))
        return wording.missing(origin, sub)
    if field_type is not None and exc.kind == "object" and struct_in(field_type):
        return wording.not_mapping(origin, key, value)
    return wording.bad_value(origin, key, describe(field_type) if field_type is not None else "valid", value)


def _walk(tokens: list, cls: type, data: Any) -> tuple[list[str], Any, Any, type | None]:
    """Follow an error's path through the struct types and the raw data: the key path
    passed (``classes[1].name``), the type of the last field, its raw value, and the struct the
    path ends in (None when it ends inside a plain list or dict value)."""
    fields: list[str] = []
    field_type: Any = None
    value: Any = data
    struct: type | None = cls
    raw: Any = data
    for token in tokens:
        if isinstance(token, str) and struct is not None:
            types = {f.name: f.type for f in _fields(struct)}
            field_type = types.get(token)
            fields.append(token)
            raw = raw.get(token) if isinstance(raw, Mapping) else None
            value = raw
            struct = struct_in(field_type) if field_type is not None else None
            continue
        element = _element_struct(field_type) if struct is None and not isinstance(token, str) else None
        if element is None or token is None or not fields:
            break  # inside a plain list/tuple/dict value: the message names the enclosing field
        fields[-1] += f"[{token}]"
        raw = raw[token] if isinstance(raw, (list, tuple)) and token < len(raw) else None
        value, struct = raw, element
    return fields, field_type, value, struct


def _element_struct(tp: Any) -> type | None:
    """The struct type of a ``list[Struct]`` field's items (None for other types)."""
    tp = _strip(tp)
    if get_origin(tp) in UNIONS:
        for arg in get_args(tp):
            found = _element_struct(arg)
            if found is not None:
                return found
        return None
    if get_origin(tp) in (list, tuple) and get_args(tp):
        return struct_in(get_args(tp)[0])
    return None


def leaf_types(tp: Any) -> set:
    """The plain types a field accepts, through Annotated, unions and containers (``float`` in
    it: the field takes numbers)."""
    tp = _strip(tp)
    args = get_args(tp)
    if not args:
        return {tp}
    found: set = set()
    for arg in args:
        if arg is not Ellipsis:
            found |= leaf_types(arg)
    return found


def section_types(cls: type) -> dict[str, type]:
    """The fields of struct ``cls`` that are structs themselves (its sections), by name."""
    return {f.name: f.type for f in _fields(cls) if struct_in(f.type) is f.type}


def section_keys(cls: type) -> dict[str, tuple[str, ...]]:
    """Section name -> its key names, for the sections of struct ``cls`` (fuzzing, docs)."""
    return {name: tp.__struct_fields__ for name, tp in section_types(cls).items()}


def finite(value: Any) -> bool:
    """A real, finite number (``true`` is not a number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
