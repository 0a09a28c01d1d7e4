"""Which install extra provides a module: the advice a command gives when it needs one that is absent.

Every stage's commands are listed whatever is installed (their modules defer the heavy imports to the
function that runs the command), so `sonomap train` on a cart with the runtime alone reaches
``import torch`` and fails there. The CLI turns that ModuleNotFoundError into one line naming the
module and the extra that brings it (``pip install 'sonomap[train]'``), instead of a traceback.

Input: a ModuleNotFoundError. Output: the one-line advice. The table follows pyproject.toml's
``[project.optional-dependencies]`` (import names, which differ from some distribution names).
"""

from __future__ import annotations

# top-level import name -> the extra that installs it
EXTRA_OF_MODULE = {
    "torch": "train",
    "torchvision": "train",
    "scipy": "train",
    "matplotlib": "train",
    "tqdm": "train",
    "tensorboard": "train",
    "imagehash": "train",
    "onnx": "export",
    "onnxconverter_common": "export",
    "pydicom": "dicom",
    "PIL": "dicom",
    "tifffile": "wsi",
    "imagecodecs": "wsi",
    "openslide": "wsi",
    "tensorrt": "tensorrt",
    "pycuda": "tensorrt",
    "torch_tensorrt": "torch-tensorrt",
    "pyigtl": "igtl",
    "prometheus_client": "metrics",
    "nrrd": "sequences",
    "SimpleITK": "plus",
    "highdicom": "pacs",
    "dicomweb_client": "pacs",
}


def missing_module_advice(exc: ModuleNotFoundError) -> str:
    """One line for a module that is not installed: its name and the extra that installs it, or, for a
    module of no extra (a dependency of sonomap itself), a reinstall."""
    name = (exc.name or "").partition(".")[0]
    if not name:
        return f"a module is not installed ({exc})"
    extra = EXTRA_OF_MODULE.get(name)
    if extra is None:
        return (
            f"module {name!r} is not installed; reinstall sonomap with its dependencies (pip install sonomap)"
        )
    return f"this command needs module {name!r}, which is not installed: pip install 'sonomap[{extra}]'"
