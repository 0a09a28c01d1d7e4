"""The error every typed conversion raises (:class:`Invalid`) and the converters of the scalar types.

Input: a value read from YAML. Output: the value as ``None``, ``bool``, ``str``, an ``int`` or
``float`` within its ``Meta`` bounds, or one of a ``Literal``'s values; :class:`Invalid` (kind
'value') when it does not fit. The types are strict: ``true`` is no number, ``"3"`` no integer,
``3.0`` no int; an int is taken for a float field (as a float). :mod:`edge_runtime.typed_convert`
picks these for the scalar parts of a type and adds containers, structs and unions.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

COMPARE = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}  # Meta bounds


class Invalid(Exception):
    """Where and why data does not fit its type. ``kind``: 'value' (wrong type or out of range),
    'object' (a mapping was wanted), 'key' (a mapping key that is not text), 'unknown' / 'missing'
    (the struct field ``name``). ``path``: struct field names, list indexes and None (a value of a
    dict), from the top down to the mapping or value at fault."""

    def __init__(self, kind: str, name: str | None = None):
        super().__init__(kind, name)
        self.kind, self.name, self.path = kind, name, []


def convert_any(value: Any) -> Any:
    return value


def convert_none(value: Any) -> None:
    if value is not None:
        raise Invalid("value")


def convert_bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise Invalid("value")


def convert_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise Invalid("value")


def number_converter(tp: type, bounds: list[tuple[str, Any]]) -> Callable[[Any], Any]:
    wanted = int if tp is int else (int, float)
    checks = tuple((COMPARE[name], float(bound) if tp is float else bound) for name, bound in bounds)

    def convert_number(value: Any) -> Any:
        if type(value) is not tp:
            if value is True or value is False or not isinstance(value, wanted):
                raise Invalid("value")
            try:
                value = tp(value)
            except OverflowError:  # an int beyond any float
                raise Invalid("value") from None
        for compare, bound in checks:
            if not compare(value, bound):  # NaN fits no bound
                raise Invalid("value")
        return value

    return convert_number


def literal_converter(values: tuple) -> Callable[[Any], Any]:
    if not all(type(v) in (str, int) for v in values):
        raise TypeError(f"Literal values must be text or integers, got {values!r}")
    lookup = {v: v for v in values}

    def convert_literal(value: Any) -> Any:
        if value is True or value is False or not isinstance(value, (str, int)) or value not in lookup:
            raise Invalid("value")
        return lookup[value]

    return convert_literal
