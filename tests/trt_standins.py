"""Stand-ins for the pycuda driver and TensorRT's builder/runtime objects, for tests on a machine
where neither can be installed (no GPU; only tensorrt-lean, whose Runtime needs a CUDA driver).

Each stand-in follows the behaviour NVIDIA's and pycuda's sources document, cited per class;
enums and dtype mapping come from the real ``tensorrt_lean`` module. They exist only because the
real objects cannot be created here: ``sonomap selfcheck`` runs the real ones on a GPU.
"""

from __future__ import annotations

import threading
import types

import numpy as np

TIMING_MAGIC = b"TRTC"  # stands for the header TensorRT checks in a serialized timing cache
TF32_FLAG = 6  # BuilderFlag::kTF32 (NvInfer.h, 10.3 - 10.13): "Enabled by default"
PROFILE = [(1, 1, 64, 64), (1, 1, 240, 320), (1, 1, 480, 640)]


class FakeCudaError(Exception):
    pass


class FakeContext:
    """pycuda ``Context`` (src/cpp/cuda.hpp): a per-thread stack of current contexts; ``detach()``
    destroys the context when it is current here or this is the thread that made it, and otherwise
    does nothing (the context leaks)."""

    def __init__(self, cuda):
        self.cuda = cuda
        self.owner = threading.get_ident()
        self.destroyed = self.leaked = False
        cuda.stack().append(self)

    def push(self):
        self.cuda.touch()
        self.cuda.stack().append(self)

    def pop(self):
        self.cuda.touch()
        stack = self.cuda.stack()
        if not stack or stack[-1] is not self:
            raise FakeCudaError("cannot pop non-current context")
        stack.pop()

    def detach(self):
        self.cuda.touch()
        stack = self.cuda.stack()
        if stack and stack[-1] is self:
            stack.pop()
            self.destroyed = True
        elif self.owner == threading.get_ident():
            self.destroyed = True
        else:
            self.leaked = True


class FakeAlloc:
    def __init__(self, cuda, nbytes):
        self.data = bytearray(nbytes)
        self.address = id(self)
        cuda.allocations[self.address] = self

    def __int__(self):
        return self.address


class FakeCuda:
    """``pycuda.driver`` after ``init()``: devices, contexts, streams, pinned and device memory.
    Records the thread of every call (``threads``)."""

    Error = FakeCudaError

    def __init__(self):
        self.local = threading.local()
        self.allocations: dict[int, FakeAlloc] = {}
        self.threads: set[int] = set()
        self.contexts: list[FakeContext] = []

    def touch(self):
        self.threads.add(threading.get_ident())

    def stack(self):
        if not hasattr(self.local, "stack"):
            self.local.stack = []
        return self.local.stack

    def current(self):
        stack = self.stack()
        return stack[-1] if stack else None

    def Device(self, index):
        cuda = self

        class _Device:
            def make_context(self):
                cuda.touch()
                ctx = FakeContext(cuda)
                cuda.contexts.append(ctx)
                return ctx

        return _Device()

    def Stream(self):
        self.touch()
        return types.SimpleNamespace(handle=1, synchronize=self.touch)

    def pagelocked_empty(self, shape, dtype):
        self.touch()
        return np.zeros(shape, dtype)

    def mem_alloc(self, nbytes):
        self.touch()
        return FakeAlloc(self, nbytes)

    def memcpy_htod_async(self, dev, host, stream):
        self.touch()
        dev.data[:] = host.tobytes()

    def memcpy_dtoh_async(self, host, dev, stream):
        self.touch()
        host[...] = np.frombuffer(bytes(dev.data), host.dtype).reshape(host.shape)


class FakeExecutionContext:
    """``IExecutionContext`` (NvInferRuntime.h, TensorRT 10.3): ``set_input_shape`` and
    ``set_tensor_address`` return False on failure; ``accept_shape``/``accept_address`` make them
    do so. ``execute_async_v3`` computes prob = frame/255 and mask = frame >= 128, and needs a
    context current on the calling thread (as the CUDA runtime does)."""

    def __init__(self, cuda):
        self.cuda = cuda
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.binds = 0
        self.accept_shape = self.accept_address = True

    def set_input_shape(self, name, shape):
        self.cuda.touch()
        self.binds += 1
        if not self.accept_shape:
            return False
        self.shapes = {n: tuple(shape) for n in ("frame", "prob", "mask")}
        return True

    def get_tensor_shape(self, name):
        return self.shapes[name]

    def set_tensor_address(self, name, address):
        self.cuda.touch()
        self.addresses[name] = address
        return self.accept_address

    def execute_async_v3(self, stream_handle):
        self.cuda.touch()
        if self.cuda.current() is None:
            raise FakeCudaError("invalid device context")
        shape = self.shapes["frame"]
        frame = np.frombuffer(bytes(self.cuda.allocations[self.addresses["frame"]].data), np.uint8).reshape(
            shape
        )
        self.cuda.allocations[self.addresses["prob"]].data[:] = (frame / 255.0).astype(np.float32).tobytes()
        self.cuda.allocations[self.addresses["mask"]].data[:] = (frame >= 128).astype(np.uint8).tobytes()
        return True


class FakeEngine:
    """``ICudaEngine`` of a folded sonomap model (tensor table with tensorrt_lean's enums).
    ``profile``: what ``get_tensor_profile_shape`` returns (TensorRT returns empty or -1 Dims when
    it has none, e.g. for a static input); ``fixed_shape``: ``get_tensor_shape`` of the input
    (-1 for dynamic axes, as TensorRT reports them)."""

    def __init__(self, trt, cuda, profile=PROFILE, fixed_shape=(1, 1, -1, -1)):
        self.trt, self.cuda = trt, cuda
        self.profile, self.fixed_shape = profile, fixed_shape
        self.table = {"frame": ("INPUT", "UINT8"), "prob": ("OUTPUT", "FLOAT"), "mask": ("OUTPUT", "UINT8")}
        self.num_io_tensors = len(self.table)
        self.contexts: list[FakeExecutionContext] = []

    def get_tensor_name(self, i):
        return list(self.table)[i]

    def get_tensor_mode(self, name):
        return getattr(self.trt.TensorIOMode, self.table[name][0])

    def get_tensor_dtype(self, name):
        return getattr(self.trt.DataType, self.table[name][1])

    def get_tensor_profile_shape(self, name, profile):
        return self.profile

    def get_tensor_shape(self, name):
        return self.fixed_shape

    def create_execution_context(self):
        self.cuda.touch()
        self.contexts.append(FakeExecutionContext(self.cuda))
        return self.contexts[-1]


def _logger_class(made: list):
    """``trt.Logger``; every instance is appended to ``made``."""
    return type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=2: made.append(self)})


def runtime_module(lean, version="10.3.0.30", fp16_flag=True):
    """The parts of ``tensorrt`` the backend uses; enums and ``nptype`` are tensorrt_lean's own.
    ``loggers``: every Logger made; ``runtime_loggers``: the logger each Runtime was given."""
    flags = types.SimpleNamespace(FP16=0) if fp16_flag else types.SimpleNamespace()
    loggers, runtime_loggers = [], []

    def runtime(log):
        runtime_loggers.append(log)
        return object()

    return types.SimpleNamespace(
        __version__=version,
        Logger=_logger_class(loggers),
        loggers=loggers,
        runtime_loggers=runtime_loggers,
        Runtime=runtime,
        nptype=lean.nptype,
        DataType=lean.DataType,
        TensorIOMode=lean.TensorIOMode,
        BuilderFlag=flags,
    )


class FakeTimingCache:
    def __init__(self, entries: bytes):
        self.entries = entries

    def serialize(self):
        return TIMING_MAGIC + self.entries


class FakeBuilderConfig:
    """``IBuilderConfig`` timing-cache calls as the Python bindings behave (pyCore.cpp, 10.3 - 11.1):
    ``create_timing_cache`` returns None for a blob it cannot read, ``set_timing_cache`` returns a
    bool (``refuse_cache`` makes it False) and, like any binding taking a reference, raises
    TypeError for None; ``get_timing_cache`` returns the attached cache. ``flags`` starts with
    TF32, which a new builder config has set ("Enabled by default", ``kTF32`` in NvInfer.h)."""

    def __init__(self, refuse_cache=False, profile_index=0):
        self.cache = None
        self.refuse_cache = refuse_cache
        self.profile_index = profile_index  # add_optimization_profile: index, or -1 for an invalid profile
        self.flags: set = {TF32_FLAG}

    def create_timing_cache(self, blob):
        blob = bytes(blob)
        if not blob:
            return FakeTimingCache(b"")
        return FakeTimingCache(blob[len(TIMING_MAGIC) :]) if blob.startswith(TIMING_MAGIC) else None

    def set_timing_cache(self, cache, ignore_mismatch):
        if cache is None:
            raise TypeError("set_timing_cache(): incompatible function arguments")
        if self.refuse_cache and cache.entries:
            return False
        self.cache = cache
        return True

    def get_timing_cache(self):
        return self.cache

    def set_memory_pool_limit(self, pool, size):
        pass

    def set_flag(self, flag):
        self.flags.add(flag)

    def clear_flag(self, flag):
        self.flags.discard(flag)

    def add_optimization_profile(self, profile):
        return self.profile_index


def builder_module(version="10.3.0.30", config=None, plan=b"PLAN"):
    """The parts of ``tensorrt`` build_plan uses; the build adds ``b"+timings"`` to the attached cache
    and returns ``plan`` (None: the build fails, as ``build_serialized_network`` reports it).
    ``builds``: one entry per build; ``builder_loggers``: the logger each Builder was given."""
    config = config or FakeBuilderConfig()
    network = types.SimpleNamespace(num_inputs=1, get_input=lambda i: types.SimpleNamespace(name="frame"))
    builds, builder_loggers, loggers = [], [], []

    class Builder:
        def __init__(self, logger):
            self.network_flags = None
            builder_loggers.append(logger)

        def create_network(self, flags):
            self.network_flags = flags
            return network

        def create_builder_config(self):
            return config

        def create_optimization_profile(self):
            return types.SimpleNamespace(set_shape=lambda *a: None)

        def build_serialized_network(self, net, cfg):
            builds.append(net)
            if cfg.cache is not None:
                cfg.cache.entries += b"+timings"
            return plan

    parser = type(
        "OnnxParser",
        (),
        {"__init__": lambda self, net, log: None, "parse": lambda self, blob: True, "num_errors": 0},
    )
    return types.SimpleNamespace(
        __version__=version,
        Builder=Builder,
        OnnxParser=parser,
        Logger=_logger_class(loggers),
        loggers=loggers,
        builds=builds,
        builder_loggers=builder_loggers,
        config=config,
        MemoryPoolType=types.SimpleNamespace(WORKSPACE=0),
        BuilderFlag=types.SimpleNamespace(FP16=0, TF32=TF32_FLAG),
        NetworkDefinitionCreationFlag=types.SimpleNamespace(
            STRONGLY_TYPED=1 if version.startswith("10.") else 0
        ),
    )


def full_module(lean, version="10.3.0.30", plan=b"PLAN"):
    """Builder and runtime parts together (the full ``tensorrt`` package), one Logger class."""
    runtime, builder = runtime_module(lean, version), builder_module(version, plan=plan)
    merged = types.SimpleNamespace(**{**vars(builder), **vars(runtime)})
    merged.builds, merged.builder_loggers = builder.builds, builder.builder_loggers
    return merged
