"""Typed structs with the standard library only: the base class of every typed config.

A :class:`Struct` subclass declares its fields by annotations, in order, with defaults::

    class Overlay(Struct, kw_only=True, forbid_unknown_fields=True):
        alpha: Annotated[float, Meta(ge=0, le=1, description="a number in [0, 1]")] = 0.4
        classes: dict[str, Any] = {}  # an empty list/dict/set default is copied for each instance

and gets what the project's structs rely on: ``__init__`` (positional arguments for the fields of
classes without ``kw_only``), ``__struct_fields__``, equality, ``repr``, ``copy``/``deepcopy``/pickle,
no attributes besides the fields (``__slots__``) and no hash (the fields can change).
``forbid_unknown_fields`` is inherited; ``kw_only`` applies to the fields a class itself declares,
which come after the positional ones. :func:`fields` resolves the annotations (once per class) and
:func:`to_builtins` turns a struct into plain data. The strict conversion from YAML data is
:mod:`edge_runtime.typed_convert`.

The names and behaviours follow msgspec 0.23 (``Struct``, ``Meta``, ``field``, ``fields``,
``to_builtins``), written here because the runtime's dependency list for the Jetson (tensorrt,
pycuda, numpy, opencv, av, pyyaml, onnxruntime) has no typed-validation library.
"""

from __future__ import annotations

import base64
import datetime
import functools
import typing
from typing import Any, NamedTuple

HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python (its tp_name has no module)
MUTABLE_DEFAULTS = (list, dict, set, bytearray)  # an empty one is copied for each instance
SECONDS_PER_MINUTE, MINUTES_PER_HOUR = 60, 60


class _NoDefault:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NODEFAULT"


NODEFAULT: Any = _NoDefault()


class _Field:
    __slots__ = ("default", "default_factory")

    def __init__(self, default: Any, default_factory: Any):
        self.default, self.default_factory = default, default_factory


def field(*, default: Any = NODEFAULT, default_factory: Any = NODEFAULT) -> Any:
    """A field's default (``default``) or the callable making one per instance (``default_factory``)."""
    if default is not NODEFAULT and default_factory is not NODEFAULT:
        raise TypeError("Cannot set both `default` and `default_factory`")
    if default_factory is not NODEFAULT and not callable(default_factory):
        raise TypeError("default_factory must be callable")
    return _Field(default, default_factory)


class FieldInfo(NamedTuple):
    name: str
    type: Any
    default: Any = NODEFAULT
    default_factory: Any = NODEFAULT

    @property
    def required(self) -> bool:
        return self.default is NODEFAULT and self.default_factory is NODEFAULT


class Meta:
    """Constraints of a number in ``Annotated[...]`` (``ge``, ``gt``, ``le``, ``lt``) and the phrase
    its error messages use (``description``)."""

    __slots__ = ("ge", "gt", "le", "lt", "description")

    def __init__(
        self, *, ge: Any = None, gt: Any = None, le: Any = None, lt: Any = None, description: Any = None
    ):
        self.ge, self.gt, self.le, self.lt, self.description = ge, gt, le, lt, description

    def __eq__(self, other: object) -> bool:
        return type(other) is Meta and _meta_items(self) == _meta_items(other)

    def __hash__(self) -> int:
        return hash(_meta_items(self))

    def __repr__(self) -> str:
        return f"Meta({', '.join(f'{name}={value!r}' for name, value in _meta_items(self))})"


def _meta_items(meta: Meta) -> tuple:
    return tuple((name, getattr(meta, name)) for name in Meta.__slots__ if getattr(meta, name) is not None)


def _own_annotations(namespace: dict) -> dict:
    annotations = namespace.get("__annotations__")
    if annotations is None and callable(namespace.get("__annotate__")):  # Python 3.14: lazy
        annotations = namespace["__annotate__"](1)
    return dict(annotations or {})


class _StructMeta(type):
    """Turns the annotated names of a class body into slots, defaults and ``__struct_fields__``."""

    def __new__(mcls, name: str, bases: tuple, namespace: dict, kw_only: bool = False, **options: Any):
        unknown = set(options) - {"forbid_unknown_fields"}
        if unknown:
            raise TypeError(f"Struct got unexpected keyword arguments {sorted(unknown)}")
        inherited: dict[str, tuple] = {}  # name -> (default, factory, kw_only), base classes first
        for base in reversed(bases):
            inherited.update(getattr(base, "_struct_specs", {}))
        own: dict[str, tuple] = {}
        for key in _own_annotations(namespace):
            value = namespace.pop(key, NODEFAULT)
            default, factory = (
                (value.default, value.default_factory) if isinstance(value, _Field) else (value, NODEFAULT)
            )
            if type(default) in MUTABLE_DEFAULTS:
                if default:
                    raise TypeError(
                        f"Using a non-empty mutable collection ({default!r}) as a default value is unsafe. "
                        "Instead configure a `default_factory` for this field."
                    )
                default, factory = NODEFAULT, type(default)
            own[key] = (default, factory, kw_only)
        specs = {**inherited, **own}
        # positional fields first, then the keyword-only ones (each in declaration order)
        order = [n for n, s in specs.items() if not s[2]] + [n for n, s in specs.items() if s[2]]
        positional = [n for n in order if not specs[n][2]]
        seen_default = False
        for key in positional:
            has_default = specs[key][0] is not NODEFAULT or specs[key][1] is not NODEFAULT
            if seen_default and not has_default:
                raise TypeError(
                    f"Required field '{key}' cannot follow optional fields. Either reorder the struct "
                    "fields, or set `kw_only=True` in the struct definition."
                )
            seen_default = seen_default or has_default
        namespace["__slots__"] = tuple(n for n in own if n not in inherited)
        namespace["__struct_fields__"] = tuple(order)
        namespace["__match_args__"] = tuple(positional)
        namespace["_struct_specs"] = specs
        namespace["_struct_defaults"] = tuple((n, specs[n][0], specs[n][1]) for n in order)
        forbid = options.get("forbid_unknown_fields")
        if forbid is not None:
            namespace["_forbid_unknown_fields"] = bool(forbid)
        return super().__new__(mcls, name, bases, namespace)

    def __init__(cls, name: str, bases: tuple, namespace: dict, **options: Any):
        super().__init__(name, bases, namespace)


class Struct(metaclass=_StructMeta):
    """Base of the typed structs (see the module docstring)."""

    _forbid_unknown_fields = False
    __hash__ = None  # type: ignore[assignment]  # mutable: like a list, not hashable

    def __init__(self, *args: Any, **kwargs: Any):
        cls = type(self)
        if len(args) > len(cls.__match_args__):
            raise TypeError("Extra positional arguments provided")
        for index, (name, default, factory) in enumerate(cls._struct_defaults):
            if index < len(args):
                if name in kwargs:
                    raise TypeError(f"Argument '{name}' given by name and position")
                value = args[index]
            elif name in kwargs:
                value = kwargs.pop(name)
            elif factory is not NODEFAULT:
                value = factory()
            elif default is not NODEFAULT:
                value = default
            else:
                raise TypeError(f"Missing required argument '{name}'")
            object.__setattr__(self, name, value)
        if kwargs:
            raise TypeError(f"Unexpected keyword argument '{next(iter(kwargs))}'")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return _field_values(self) == _field_values(other)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__)
        return f"{type(self).__name__}({shown})"


def _field_values(struct: Struct) -> tuple:
    return tuple(getattr(struct, name) for name in struct.__struct_fields__)


def new_instance(cls: type, values: dict[str, Any]) -> Any:
    """An instance of struct ``cls`` from checked ``values``, defaults filled (no ``__init__``)."""
    instance = cls.__new__(cls)
    for name, default, factory in cls._struct_defaults:
        if name in values:
            value = values[name]
        else:
            value = factory() if factory is not NODEFAULT else default
        object.__setattr__(instance, name, value)
    return instance


@functools.cache
def fields(cls: type) -> tuple[FieldInfo, ...]:
    """The fields of struct ``cls`` in order: name, resolved type (``Annotated`` kept), default."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return tuple(
        FieldInfo(name, hints[name], default, factory) for name, default, factory in cls._struct_defaults
    )


def to_builtins(obj: Any) -> Any:
    """Plain data: a struct -> a dict (field order), sets -> lists, bytes -> base64, dates -> ISO text;
    tuples stay tuples. These are the types a struct can hold after conversion from YAML
    (``yaml.safe_load`` makes dates, timestamps, ``!!binary`` bytes and ``!!set`` sets in free-form
    ``dict[str, Any]`` fields). TypeError for any other type."""
    kind = type(obj)
    if obj is None or kind in (bool, int, float, str):
        return obj
    if isinstance(obj, Struct):
        return {name: to_builtins(getattr(obj, name)) for name in obj.__struct_fields__}
    if isinstance(obj, dict):
        return {to_builtins(key): to_builtins(value) for key, value in obj.items()}
    if isinstance(obj, list) or isinstance(obj, (set, frozenset)):
        return [to_builtins(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(to_builtins(value) for value in obj)
    if isinstance(obj, (bytes, bytearray)):
        return base64.b64encode(obj).decode()
    if isinstance(obj, datetime.datetime):
        return _iso_time(obj)
    if isinstance(obj, datetime.date):
        return obj.isoformat()
    name = kind.__name__ if kind.__flags__ & HEAP_TYPE else f"{kind.__module__}.{kind.__qualname__}"
    raise TypeError(f"Encoding objects of type {name.removeprefix('builtins.')} is unsupported")


def _iso_time(value: datetime.datetime) -> str:
    offset = value.utcoffset()
    text = value.replace(tzinfo=None).isoformat()
    if offset is None:
        return text
    minutes = int(offset.total_seconds() // SECONDS_PER_MINUTE)
    if minutes == 0:
        return text + "Z"
    sign, minutes = ("-", -minutes) if minutes < 0 else ("+", minutes)
    return f"{text}{sign}{minutes // MINUTES_PER_HOUR:02d}:{minutes % MINUTES_PER_HOUR:02d}"
