"""Which TensorRT engine the backend runs, and how it gets it.

Input: the model file and its manifest, with the backend's settings (precision, workspace, profile,
cache folder, device). The model is an engine file (``.engine``/``.plan``/``.trt``: it runs at the
precision its manifest recorded, and is refused when built for another GPU or TensorRT version) or
a folded ``.onnx`` model, whose engine is loaded from or built into the cache
(:mod:`edge_runtime.tensorrt.engines`, folder ``cache_dir``). Output: a deserialised engine from
:meth:`EngineLoader.load`, and the cache's record of it (:attr:`EngineLoader.record`).

The constructor checks what the build will need (the FP16 twin the strongly typed path parses), so
a missing file fails at start-up, not at the first frame. A build that fails
(EngineBuildError/ConfigError) is remembered for this process, by model file, the file the build
parses (and its sha256) and settings: later starts (the fail-safe guard's retries and reloads)
re-raise it at once instead of rebuilding for up to 20 minutes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_runtime.errors import ConfigError, SonomapError
from edge_runtime.manifest import ENGINE_SUFFIXES
from edge_runtime.tensorrt import cache, engines, key, modules, preflight
from edge_runtime.tensorrt.build import EngineBuildError
from edge_runtime.tensorrt.cache import DEFAULT_CACHE_DIR
from edge_runtime.tensorrt.failed_builds import FAILED_BUILDS

log = logging.getLogger("sonomap.backend.tensorrt")  # the backend's logger: a failed build is its error


class EngineLoader:
    """The engine of one TensorRT backend: its precision, its build's id, and loading it."""

    def __init__(
        self,
        model_path: Path,
        manifest,
        cache_dir: str | Path | None,
        fp16: bool,
        workspace_mb: int,
        profile: dict | None,
        on_long_build,
        device_index: int,
    ):
        self.model_path = model_path
        self.manifest = manifest
        self.cache_dir = Path(cache_dir) if cache_dir else DEFAULT_CACHE_DIR
        self.precision = self._engine_precision() if self.is_engine_file() else ("fp16" if fp16 else "fp32")
        self.workspace_mb = workspace_mb
        self.profile = profile  # None: the manifest's io.profile (what export tensorrt uses by default)
        self.on_long_build = on_long_build
        self.device_index = device_index
        self.record = None
        self._build_file: preflight.BuildFile | None = None  # what _preflight found the build parses
        self._preflight()

    def is_engine_file(self) -> bool:
        return self.model_path.suffix.lower() in ENGINE_SUFFIXES

    def _engine_precision(self) -> str:
        """The precision an engine file was built with (its manifest's key), whatever the config asks:
        a built engine cannot change it, and the HUD and logs must show what runs."""
        recorded = self.manifest.extra.get("engine_key")
        precision = recorded.get("precision") if isinstance(recorded, dict) else None
        if precision not in (key.FP16, key.FP32):
            raise ConfigError(
                f"{self.model_path}: its manifest has no 'extra.engine_key.precision'; not an engine "
                "written by sonomap: rebuild it with 'sonomap export tensorrt'"
            )
        return precision

    def _preflight(self) -> None:
        """Fail now (service start-up) on what the engine build would refuse later, e.g. the FP16
        twin the strongly typed path parses. Without TensorRT nothing can be decided: the first
        inference reports that, as before."""
        if self.model_path.suffix.lower() != ".onnx":
            return
        try:
            trt = modules.import_tensorrt()
        except modules.TensorRTUnavailable:
            return
        self._build_file = preflight.preflight(
            self.model_path, self.precision, trt.__version__, hasattr(trt.BuilderFlag, "FP16")
        )

    def _build_id(self) -> tuple | None:
        """What an engine built from the ONNX model depends on here (None for an engine file, which
        is never built): among it the file the build parses (model.fp16.onnx on the strongly typed
        path) and its sha256, so a replaced twin is built again after a failed build."""
        if self.is_engine_file():
            return None
        if self._build_file is None:  # checked once per backend (the fail-safe guard makes one a retry)
            self._preflight()
        build_file = self._build_file
        return (
            str(self.model_path.resolve()),
            str(build_file.path.resolve()),
            build_file.sha256,
            self.precision,
            self.workspace_mb,
            repr(self.profile),
            str(self.cache_dir),
            self.device_index,
        )

    def refuse_failed_build(self) -> tuple | None:
        """This build's id for :meth:`load` (None for an engine file); raises the error of the same
        build that already failed in this process, before a CUDA context is made for it."""
        build_id = self._build_id()
        failed = FAILED_BUILDS.error_for(build_id) if build_id is not None else None
        if failed is not None:
            raise failed
        return build_id

    def load(self, trt, runtime, build_id: tuple | None):
        """The engine, deserialised by ``runtime`` on the thread whose CUDA context is current; a
        build that fails is remembered under ``build_id`` (from :meth:`refuse_failed_build`)."""
        try:
            return self._load(trt, runtime)
        except (EngineBuildError, ConfigError) as exc:
            if build_id is not None:
                self._remember_failure(build_id, exc)
            raise

    def _remember_failure(self, build_id: tuple, exc: SonomapError) -> None:
        FAILED_BUILDS.remember(build_id, exc)
        log.error(
            "TensorRT engine for %s could not be built or loaded: %s. Not retried until the model file or "
            "the TensorRT settings change, or the service restarts",
            self.model_path,
            exc,
        )

    def _load(self, trt, runtime):
        gpu = key.current_gpu(self.device_index)
        if self.is_engine_file():
            cache.check_engine_file(self.model_path, gpu, trt.__version__)
            engine = runtime.deserialize_cuda_engine(self.model_path.read_bytes())
            if engine is None:
                raise ConfigError(
                    f"{self.model_path}: TensorRT {trt.__version__} cannot deserialise this engine "
                    f"({modules.logged_errors(trt) or 'corrupt, or built by another TensorRT'}); rebuild it"
                )
            return engine
        engine, self.record = engines.load_engine(
            runtime,
            self.model_path,
            self.cache_dir,
            precision=self.precision,
            workspace_mb=self.workspace_mb,
            on_long_build=self.on_long_build,
            profile=self.profile,
            trt=trt,
            gpu=gpu,
        )
        return engine
