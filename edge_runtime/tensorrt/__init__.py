"""TensorRT engine build and cache for the cart (no torch, no export/training imports).

- :mod:`.modules`: guarded imports of ``tensorrt`` and ``pycuda`` with clear errors;
- :mod:`.key`: what an engine depends on (ONNX sha256, GPU, TensorRT version, precision,
  shapes) and which build path a TensorRT version needs;
- :mod:`.cache`: engine files keyed by that, written atomically, checked before use;
- :mod:`.build`: the TensorRT builder (ONNX parser, profile, workspace, timing cache);
- :mod:`.engines`: ``ensure_engine`` - load a valid cached engine or build one;
- :mod:`.engine_loader`: the engine the runtime's backend runs (an engine file or the cache's), a
  failed build remembered.

The cart service calls :func:`edge_runtime.tensorrt.engines.ensure_engine` at startup;
``sonomap export tensorrt`` and ``sonomap selfcheck`` call the same function.
"""
