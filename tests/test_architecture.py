"""The house (docs/architecture.md): no import circles (in any stage package), no runtime module imports
a room above its own, other stages reach into runtime rooms only where the doc says why, no module
outgrows the house size, and the doc's ground-floor list names every ground-floor module.

The graph is read from the source (every import statement, function-level ones included), so a
circle hidden inside a function counts too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edge_runtime"
ROOF = {
    "edge_runtime.cli",
    "edge_runtime.commands",
}  # the wiring (commands: a package, its modules too): the only modules that may import every room
# A room may import the ground floor, its own room and rooms of a lower level.
LEVELS = {
    "ground": 0,
    "biopsy": 1,
    "render": 1,
    "igtl": 1,
    "tensorrt": 1,
    "backends": 2,
    "sinks": 2,
    "sources": 3,
    "pipeline": 4,
    "service": 5,
    "tools": 6,
    "roof": 7,
}


STAGES = ("edge_runtime", "training", "registration", "export")


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    out = {}
    for f in package.rglob("*.py"):
        parts = f.relative_to(package.parent).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = f
    return out


def _imported(path: Path, prefix: str, mods: dict[str, Path]) -> set[str]:
    """The modules named ``prefix...`` that ``path`` imports, function-level imports included: for
    ``from X import Y``, the module X.Y when it is one of ``mods``, else X."""
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(prefix):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                deps.add(sub if sub in mods else node.module)
        elif isinstance(node, ast.Import):
            deps |= {a.name for a in node.names if a.name.startswith(prefix)}
    return deps


def _graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    mods = _modules(package)
    return {
        mod: {d for d in _imported(path, package.name, mods) if d in mods and d != mod}
        for mod, path in mods.items()
    }


def room(module: str) -> str:
    if module in ROOF or module.rpartition(".")[0] in ROOF:
        return "roof"
    parts = module.split(".")
    if len(parts) >= 2 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return "ground"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_no_stage_package_has_import_circles(stage):
    assert _cycles(_graph(PACKAGE.parent / stage)) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_room_has_a_level():
    rooms = {room(m) for m in _modules()}
    assert rooms <= set(LEVELS), rooms - set(LEVELS)


def test_no_module_imports_a_room_above_its_own():
    upward = [
        f"{mod} ({room(mod)}) -> {dep} ({room(dep)})"
        for mod, deps in _graph().items()
        for dep in deps
        if room(dep) != room(mod) and LEVELS[room(dep)] > LEVELS[room(mod)]
    ]
    assert upward == []


def test_the_pipeline_knows_nothing_of_systemd():
    graph = _graph()
    pipeline = [m for m in graph if room(m) == "pipeline"]
    assert pipeline
    assert all(room(d) != "service" for m in pipeline for d in graph[m])


ALLOWED_PRIVATE = {"os._exit"}  # the standard library's documented exit without clean-up


def _private_reaches(source: str) -> list[str]:
    """``obj._name`` where ``obj`` is not ``self``/``cls``: a module reaching into another object's
    private fields (dunder names are protocol, not private)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        owner = node.value.id if isinstance(node.value, ast.Name) else None
        if owner in ("self", "cls") or f"{owner}.{node.attr}" in ALLOWED_PRIVATE:
            continue
        found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_reaches_into_another_objects_private_fields():
    reaches = {
        str(path.relative_to(PACKAGE.parent)): found
        for path in _modules().values()
        if (found := _private_reaches(path.read_text()))
    }
    assert reaches == {}


def test_the_private_field_check_finds_a_reach():
    assert _private_reaches("def run(pipeline):\n    pipeline._stats.record('x', 1)\n    self._ok = 1\n") == [
        "line 2: pipeline._stats"
    ]


# Import rule 4: another stage imports the runtime's ground floor, and reaches into a room only where
# docs/architecture.md says why (each prefix covers a room's modules, or names one module).
ROOM_REACHES = {
    "export": ("edge_runtime.tensorrt", "edge_runtime.backends"),  # the cart's own engine code; suffixes
    "training": ("edge_runtime.backends", "edge_runtime.biopsy.study_id"),  # evaluate through ONNX Runtime
    "registration": (  # study ids as capture reads them; the simulated procedure's screen and writer
        "edge_runtime.biopsy.study_id",
        "edge_runtime.sources.synthetic",
        "edge_runtime.sinks.mp4",
    ),
}


def _runtime_reaches(stage: str) -> set[tuple[str, str]]:
    """(module of STAGE, runtime room module it imports), function-level imports included."""
    runtime = _modules()
    return {
        (mod, target)
        for mod, path in _modules(PACKAGE.parent / stage).items()
        for target in _imported(path, PACKAGE.name, runtime)
        if room(target) != "ground"
    }


@pytest.mark.parametrize("stage", sorted(ROOM_REACHES))
def test_other_stages_reach_into_runtime_rooms_only_where_the_docs_say_why(stage):
    allowed = ROOM_REACHES[stage]
    reaches = _runtime_reaches(stage)
    assert reaches, f"{stage} imports no runtime room: the scan is broken, or ROOM_REACHES is stale"
    stray = sorted(
        (mod, target)
        for mod, target in reaches
        if not any(target == prefix or target.startswith(prefix + ".") for prefix in allowed)
    )
    assert not stray, f"{stage} reaches into runtime rooms without a documented reason: {stray}"


MAX_MODULE_LINES = 300  # the house rule: a module has one job, and one job fits in this


@pytest.mark.parametrize("stage", STAGES)
def test_every_module_stays_under_the_house_size(stage):
    too_long = {
        mod: n
        for mod, path in _modules(PACKAGE.parent / stage).items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def _ground_floor_text() -> str:
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    start = doc.index("**Ground floor**")
    return doc[start : doc.index("**Rooms**", start)]


def test_the_architecture_doc_names_every_ground_floor_module():
    named = set(re.findall(r"`(\w+)`", _ground_floor_text()))
    modules = {path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    assert modules - named == set(), "ground-floor modules docs/architecture.md does not name"
    assert len(modules) > 30  # the glob sees the whole floor
