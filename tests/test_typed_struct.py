"""The standard-library typed structs (edge_runtime/typed_struct.py) and their strict conversion
(edge_runtime/typed_convert.py, typed_scalars.py): the behaviours the typed configs rely on, pinned one by one."""

from __future__ import annotations

import copy
import datetime
import math
import pickle
from typing import Annotated, Any, Literal

import pytest
import yaml

from edge_runtime.typed_convert import convert
from edge_runtime.typed_scalars import Invalid
from edge_runtime.typed_struct import Meta, Struct, field, fields, to_builtins

WHOLE = Annotated[int, Meta(ge=1, le=10)]
REAL = Annotated[float, Meta(gt=0.0, le=10.0)]
NUMBER = Annotated[WHOLE | REAL, Meta(description="a number in (0, 10]")]


class Point(Struct):
    x: int
    y: int = 0
    tags: list = []


class Leaf(Struct, kw_only=True, forbid_unknown_fields=True):
    a: int = 1
    b: REAL = 0.5


class Node(Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    leaf: Leaf = field(default_factory=Leaf)
    leaves: list[Leaf] = []
    size: NUMBER | None = None
    free: dict[str, Any] = {}


class Base(Struct, kw_only=True, forbid_unknown_fields=True):
    first: int = 0


class Derived(Base):
    second: int = 0


# ------------------------------------------------------------------ the struct class


def test_init_defaults_equality_repr_and_copies():
    p = Point(1, tags=["a"])
    assert (p.x, p.y, p.tags) == (1, 0, ["a"]) and Point.__struct_fields__ == ("x", "y", "tags")
    assert Point(1) == Point(1) and Point(1) != Point(2) and Point(1) != (1, 0, [])
    assert repr(p) == "Point(x=1, y=0, tags=['a'])"
    assert Point(1).tags is not Point(1).tags  # an empty mutable default is one per instance
    clone = copy.deepcopy(p)
    assert clone == p and clone.tags is not p.tags and pickle.loads(pickle.dumps(p)) == p
    p.y = 5
    assert p.y == 5
    with pytest.raises(AttributeError):
        p.z = 1  # no attributes besides the fields
    with pytest.raises(TypeError, match="unhashable"):
        hash(p)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: Point(), "Missing required argument 'x'"),
        (lambda: Point(1, 2, [], 4), "Extra positional arguments provided"),
        (lambda: Point(1, x=2), "Argument 'x' given by name and position"),
        (lambda: Point(1, z=2), "Unexpected keyword argument 'z'"),
        (lambda: Leaf(1), "Extra positional arguments provided"),
    ],
)
def test_init_errors(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_class_options_and_field_infos():
    assert Derived.__struct_fields__ == ("second", "first")  # keyword-only fields come last
    assert Derived(5).second == 5
    with pytest.raises(Invalid) as err:  # forbid_unknown_fields is inherited
        convert({"third": 1}, Derived)
    assert (err.value.kind, err.value.name) == ("unknown", "third")
    infos = fields(Node)
    assert [i.name for i in infos] == ["name", "leaf", "leaves", "size", "free"]
    assert infos[0].required and not infos[1].required and infos[3].type == NUMBER | None
    with pytest.raises(TypeError, match="non-empty mutable collection"):

        class Bad(Struct):
            items: list = [1]

    with pytest.raises(TypeError, match="Required field 'b' cannot follow optional fields"):

        class Unordered(Struct):
            a: int = 1
            b: int


def test_to_builtins():
    node = Node(name="n", leaves=[Leaf(a=2)], free={"t": (1, 2), "s": {3}, "d": datetime.date(2024, 1, 2)})
    assert to_builtins(node) == {
        "name": "n",
        "leaf": {"a": 1, "b": 0.5},
        "leaves": [{"a": 2, "b": 0.5}],
        "size": None,
        "free": {"t": (1, 2), "s": [3], "d": "2024-01-02"},  # tuples stay tuples, sets become lists
    }
    assert to_builtins(b"ab") == "YWI="
    stamp = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert to_builtins(stamp) == "2024-01-02T03:04:05Z"
    with pytest.raises(TypeError, match="Encoding objects of type complex is unsupported"):
        to_builtins(Node(name="n", free={"c": 1j}))
    with pytest.raises(TypeError, match="Encoding objects of type datetime.timedelta is unsupported"):
        to_builtins(datetime.timedelta(seconds=1))  # YAML makes no durations


def test_to_builtins_round_trips_what_yaml_makes():
    text = "d: 2024-01-02\nt: 2024-01-02 03:04:05+01:30\nb: !!binary YWI=\ns: !!set {x: null}\nl: [1, 2.5, yes]\n"
    data = yaml.safe_load(text)
    node = Node(name="n", free=data)
    assert to_builtins(node)["free"] == {
        "d": "2024-01-02",
        "t": "2024-01-02T03:04:05+01:30",
        "b": "YWI=",
        "s": ["x"],
        "l": [1, 2.5, True],
    }


# ------------------------------------------------------------------ strict conversion


@pytest.mark.parametrize(
    "tp, value, expected",
    [
        (int, 3, 3),
        (float, 3, 3.0),  # an int is taken for a float, as a float
        (NUMBER, 3, 3),  # ... and stays an int where the field takes one
        (NUMBER, 2.5, 2.5),
        (Annotated[float, Meta(ge=0.0)], math.inf, math.inf),
        (Literal["a", "b"], "b", "b"),
        (bool | Literal["auto"], "auto", "auto"),
        (list[int], (1, 2), [1, 2]),
        (tuple[int, int], [1, 2], (1, 2)),
        (str | tuple[int, int] | None, [1, 2], (1, 2)),
        (dict[str, Any], {"k": [1]}, {"k": [1]}),
        (Any, {1: object}, {1: object}),
    ],
)
def test_values_that_fit(tp, value, expected):
    result = convert(value, tp)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "tp, value",
    [
        (int, True),  # true is not a number
        (float, False),
        (int, 3.0),
        (int, "3"),
        (str, 3),
        (float, 10**400),  # beyond any float
        (REAL, math.nan),  # NaN fits no bound
        (REAL, 0),
        (NUMBER, 11),
        (NUMBER, math.inf),
        (Literal["a"], "c"),
        (Literal[1], True),
        (tuple[int, int], [1, 2, 3]),
        (tuple[int, int], {1, 2}),
        (int | None, "x"),
        (list[int], "12"),
        (dict[str, Any] | None, 3),
    ],
)
def test_values_that_do_not_fit(tp, value):
    with pytest.raises(Invalid) as err:
        convert(value, tp)
    assert err.value.kind == "value" and err.value.path == []


@pytest.mark.parametrize(
    "value, kind, name, path",
    [
        ({}, "missing", "name", []),
        ({"name": "n", "zz": 1}, "unknown", "zz", []),
        ({"name": "n", 1: 2}, "key", None, []),
        ({"name": "n", "free": {1: 2}}, "key", None, ["free"]),
        ({"name": "n", "leaf": 3}, "object", None, ["leaf"]),
        ({"name": "n", "leaf": {"b": True}}, "value", None, ["leaf", "b"]),
        ({"name": "n", "leaves": [{}, {"q": 1}]}, "unknown", "q", ["leaves", 1]),
        ({"name": "n", "leaves": [3]}, "object", None, ["leaves", 0]),
        ({"name": "n", "size": "big"}, "value", None, ["size"]),
        ({"leaf": {"a": "x"}}, "value", None, ["leaf", "a"]),  # keys in the order written, then missing
    ],
)
def test_the_first_problem_is_raised_with_its_path(value, kind, name, path):
    with pytest.raises(Invalid) as err:
        convert(value, Node)
    assert (err.value.kind, err.value.name, err.value.path) == (kind, name, path)


def test_a_converted_struct_fills_defaults_and_keeps_its_own_instance():
    node = convert({"name": "n", "leaves": [{"a": 2}]}, Node)
    assert node == Node(name="n", leaves=[Leaf(a=2)]) and node.free == {} and node.leaf == Leaf()
    assert convert(node, Node) is node
    other = convert({"name": "m"}, Node)
    assert other.free is not node.free
