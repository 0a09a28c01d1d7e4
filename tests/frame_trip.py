"""Test helper: which edge_runtime files one frame's trip enters, traced for real.

A replay runs under :func:`sys.settrace` (on every thread) and each call into an edge_runtime file is
given to the frame it works for:

- a call whose arguments hold the frame (directly, in a tuple/list, or as a prediction made from it),
  or whose caller holds it in a local variable (a schedule's loop body), works for that frame;
- so does every call nested under such a call (a backend under the inference stage, an encoder
  under the sinks stage);
- the work inside a source's generator (decoding, colour planes, de-identification) belongs to the
  frame that the outermost source generator yields at the end of it;
- a prediction made on a thread of its own (the replay's inference thread runs the guarded backend
  on the gray ROI alone) brings the backend's calls to the frame it is accepted for.

:func:`trace_frame` follows frame ``index`` (one in the middle of the clip, so opening the source,
the backend and the sinks is not counted) and returns a :class:`Trip`: the files entered, and the
calls from one file into another, among them the crossings between the graph and a schedule. Run
``python -m tests.frame_trip CLIP`` from the repository root to print them for a clip (the shipped
default model, the ONNX Runtime backend).
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import edge_runtime
from edge_runtime.frames import Frame, Prediction

PACKAGE = str(Path(edge_runtime.__file__).resolve().parent) + "/"
GRAPH_FILES = {"pipeline/graph.py", "pipeline.py"}
# Each schedule's own files: the live schedule runs its threads in live.py and asks live_display.py what
# each frame is drawn with, a call inside the schedule, not into it.
SCHEDULES = (
    frozenset({"pipeline/replay.py", "replay.py"}),
    frozenset({"pipeline/live.py", "pipeline/live_display.py", "live.py"}),
)
SCHEDULE_FILES = frozenset().union(*SCHEDULES)
GENERATOR_FLAG = 0x20  # inspect.CO_GENERATOR


@dataclass
class Trip:
    files: set[str] = field(default_factory=set)  # edge_runtime files entered, relative to the package
    hops: Counter = field(default_factory=Counter)  # (caller file, callee file) -> calls, files differing
    carriers: set[str] = field(default_factory=set)  # files with a function that takes the frame itself

    @property
    def crossings(self) -> int:
        """Calls between the graph and a schedule, either way."""
        return sum(
            n
            for (a, b), n in self.hops.items()
            if (a in GRAPH_FILES and b in SCHEDULE_FILES) or (a in SCHEDULE_FILES and b in GRAPH_FILES)
        )

    @property
    def into_schedules(self) -> list[tuple[str, str]]:
        """Calls into a schedule's files from a file outside that schedule (a stage calling back)."""
        return sorted(
            (a, b) for a, b in self.hops if any(b in files and a not in files for files in SCHEDULES)
        )

    def leaves(self, ground_floor: set[str]) -> set[str]:
        """Files the trip enters that hand the frame on to no room: each calls, on this trip, only
        ground-floor files (``ground_floor``: files directly in the package) or none. A reader who
        follows the frame can skip them: the call returns to the file that made it."""
        calls_a_room = {a for (a, b) in self.hops if b not in ground_floor}
        return {f for f in self.files if f not in calls_a_room}

    @property
    def ping_pong(self) -> list[tuple[str, str]]:
        """Pairs of files that call each other (a frame going back and forth between them)."""
        return sorted((a, b) for a, b in self.hops if a < b and (b, a) in self.hops)

    def report(self) -> str:
        hops = ", ".join(f"{a}->{b} x{n}" for (a, b), n in sorted(self.hops.items()))
        route = self.files - self.leaves(ground_floor(self.files))
        return (
            f"{len(self.files)} files: {', '.join(sorted(self.files))}\n"
            f"{len(route)} hand the frame on to a room (the route): {', '.join(sorted(route))}\n"
            f"{len(self.carriers)} take the frame itself: {', '.join(sorted(self.carriers))}\n"
            f"graph<->schedule crossings: {self.crossings}\n"
            f"files calling each other: {self.ping_pong}\nhops between files: {hops}"
        )


def ground_floor(files: set[str]) -> set[str]:
    """The files of ``files`` that lie directly in the package, outside every room."""
    return {f for f in files if "/" not in f}


def _relative(code_file: str) -> str | None:
    return code_file[len(PACKAGE) :] if code_file.startswith(PACKAGE) else None


def _nearest_ours(frame: FrameType | None) -> FrameType | None:
    while frame is not None and _relative(frame.f_code.co_filename) is None:
        frame = frame.f_back
    return frame


class _Calls(list):
    """(caller, callee) calls not yet given to a frame. ``shared``: an outermost source generator's
    resume, whose nested calls append here directly; otherwise each call collects its own and hands
    them to its caller's when it returns, or keeps them with the prediction it returns (a backend on
    a thread of its own: the calls go to the frame the prediction is later accepted for)."""

    def __init__(self, shared: bool):
        super().__init__()
        self.shared = shared


class _Tracer:
    """The settrace hook. ``marks``: an edge_runtime frame in progress -> "trip" or its :class:`_Calls`."""

    def __init__(self, index: int):
        self.index = index
        self.target: Frame | None = None
        self.trip = Trip()
        self.marks: dict[FrameType, object] = {}
        self.owners: set[FrameType] = set()  # the outermost generators, whose yield gives their calls out
        self.stash: dict[int, tuple[Prediction, _Calls]] = {}  # predictions made off the frame's way
        self.lock = threading.Lock()

    def _holds(self, value) -> bool:
        target = self.target
        if target is None:
            return False
        if value is target or (isinstance(value, Prediction) and getattr(value, "frame", None) is target):
            return True
        return isinstance(value, tuple | list) and any(
            v is target or (isinstance(v, Prediction) and getattr(v, "frame", None) is target)
            for v in value[:8]
        )

    def _count(self, caller: str | None, callee: str) -> None:
        self.trip.files.add(callee)
        if caller is not None:
            self.trip.files.add(caller)
            if caller != callee:
                self.trip.hops[(caller, callee)] += 1

    def _take_stashed(self, values) -> None:
        """A trip call that takes a prediction made elsewhere: that prediction's calls join the trip."""
        for value in values:
            made = self.stash.get(id(value)) if isinstance(value, Prediction) else None
            if made is not None and made[0] is value:
                del self.stash[id(value)]
                for caller, callee in made[1]:
                    self._count(caller, callee)

    def __call__(self, frame: FrameType, event: str, arg):
        if event != "call":
            return None
        callee = _relative(frame.f_code.co_filename)
        if callee is None:
            return None
        back = frame.f_back
        caller = _relative(back.f_code.co_filename) if back is not None else None
        with self.lock:
            parent = _nearest_ours(back)
            mark = self.marks.get(parent) if parent is not None else None
            if isinstance(mark, _Calls) and mark.shared:  # inside a source generator: its yield decides
                mark.append((caller, callee))
                own = mark
            elif mark == "trip":
                self._count(caller, callee)
                own = "trip"
            elif frame.f_code.co_flags & GENERATOR_FLAG and not (
                parent is not None and parent.f_code.co_flags & GENERATOR_FLAG
            ):
                own = _Calls(shared=True)  # an outermost generator resumes
                own.append((caller, callee))
                self.owners.add(frame)
            elif any(self._holds(v) for v in frame.f_locals.values()):
                self._count(caller, callee)
                self.trip.carriers.add(callee)
                self._take_stashed(frame.f_locals.values())
                own = "trip"
            elif back is not None and any(self._holds(v) for v in back.f_locals.values()):
                self._count(caller, callee)
                self._take_stashed(frame.f_locals.values())
                own = "trip"
            else:
                own = _Calls(shared=False)
                own.append((caller, callee))
            self.marks[frame] = own
        return self._local

    def _local(self, frame: FrameType, event: str, arg):
        if event != "return":
            return self._local
        with self.lock:
            own = self.marks.pop(frame, None)
            owner = frame in self.owners
            self.owners.discard(frame)
            if owner and isinstance(arg, Frame):
                if self.target is None and arg.index == self.index:
                    self.target = arg
                if arg is self.target:
                    for caller, callee in own:
                        self._count(caller, callee)
                    self.trip.carriers.add(_relative(frame.f_code.co_filename))
            elif isinstance(own, _Calls) and not own.shared:
                if isinstance(arg, Prediction):  # returned up a chain of calls: each adds its own
                    made = self.stash.get(id(arg))
                    if made is not None and made[0] is arg:
                        own.extend(made[1])
                    self.stash[id(arg)] = (arg, own)
                else:
                    up = self.marks.get(_nearest_ours(frame.f_back))
                    if isinstance(up, _Calls):
                        up.extend(own)
        return self._local


def trace_frame(run, index: int) -> Trip:
    """Run ``run()`` (a replay or live run) traced; the trip of the frame numbered ``index``."""
    tracer = _Tracer(index)
    threading.settrace(tracer)
    sys.settrace(tracer)
    try:
        run()
    finally:
        sys.settrace(None)
        threading.settrace(None)
    assert tracer.target is not None, f"frame {index} never came out of the source"
    return tracer.trip


def replay_trip(clip: Path, model: Path, out_dir: Path, indexes: tuple[int, ...] = (4, 5, 6)) -> Trip:
    """The trips of frames ``indexes`` in replays of ``clip`` that write an overlay video, merged: the
    files any of them entered, and the most calls any of them made between two files (caches make
    one frame skip a helper another frame enters, e.g. the HUD line's text)."""
    from edge_runtime.config import build_config
    from edge_runtime.pipeline.graph import Pipeline

    merged = Trip()
    for index in indexes:
        config = build_config(
            {
                "source": {"input": str(clip), "max_frames": index + 4},
                "inference": {"model": str(model), "backend": "onnxruntime"},
                "sinks": {"video": str(out_dir / "overlay.mp4")},
            }
        )
        trip = trace_frame(lambda config=config: Pipeline(config).run(), index)
        merged.files |= trip.files
        merged.hops |= trip.hops  # Counter union: the larger count of each hop
        merged.carriers |= trip.carriers
    return merged


def live_trip(clip: Path, model: Path, index: int = 0) -> Trip:
    """The trip of frame ``index`` when ``clip`` is played by the live schedule (paced at its rate,
    newest frame wins, no window). The first frame is always shown; a later one may be dropped."""
    from edge_runtime.config import build_config
    from edge_runtime.pipeline.graph import Pipeline

    config = build_config(
        {
            "source": {"input": str(clip), "max_frames": index + 4},
            "inference": {"model": str(model), "backend": "onnxruntime"},
            "sinks": {"window": False},
        }
    )

    def run() -> None:
        pipeline = Pipeline(config)
        pipeline.live_schedule = True
        pipeline.run()

    return trace_frame(run, index)


if __name__ == "__main__":
    import tempfile

    root = Path(edge_runtime.__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        print(replay_trip(Path(sys.argv[1]), root / "models/default/model.onnx", Path(tmp)).report())
