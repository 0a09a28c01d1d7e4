"""Shared fixtures: the vendored BUSI sample, the full BUSI set (skip when absent), a folder for a
hand-written case.yaml, Xvfb; the CI rule that a missing system tool fails instead of skipping
(:mod:`ci_rules`)."""

from __future__ import annotations

import os

# OpenMP threads that sleep when idle instead of spinning, as every training command sets for its own
# process (training/openmp.py): the tests that train, evaluate or export in this process would
# otherwise spin on the 2 cores that the other pytest-xdist worker needs. Set before torch loads
# (it is read once, then); a value the user set is kept. Child processes inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import run_shared
from ci_rules import fail_if_required

from edge_runtime import privacy
from registration.sim.biopsy_core import CoreParams
from registration.sim.simulate import SimParams, simulate_cases

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "data" / "busi"
SLOW_TIMEOUT_S = 1800  # the whole demo flow (test_end_to_end) on 2 shared cores, with margin
FULL_BUSI = Path(os.environ.get("SONOMAP_BUSI", REPO.parent / "shared" / "data" / "busi"))


def pytest_configure(config) -> None:
    run_shared.start_run()  # before the xdist workers start: they inherit the shared folder


def pytest_unconfigure(config) -> None:
    run_shared.end_run()


def has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def busi_sample() -> Path:
    """The vendored 30-image BUSI sample (images/, masks/, index.csv)."""
    return SAMPLE


@pytest.fixture(scope="session")
def dark_manifest():
    """The manifest of the dark-region test model (runtime_model.dark_onnx): classes and colours."""
    from runtime_model import dark_onnx

    from edge_runtime.manifest import load_manifest

    return load_manifest(dark_onnx())


@pytest.fixture(scope="session")
def busi_malignant(busi_sample):
    """A real malignant BUSI image of the vendored sample, as BGR."""
    import cv2

    return cv2.imread(str(busi_sample / "images" / "malignant_002.png"))


@pytest.fixture(scope="session")
def simulated_case(busi_sample, tmp_path_factory) -> Path:
    """One simulated biopsy case (seed 11, an 8 µm/px slide) from the vendored sample: its folder.
    Tests may add files beside its own, under names of their own."""
    out = tmp_path_factory.mktemp("simulated_case")
    made = simulate_cases(
        busi_sample / "images",
        busi_sample / "masks",
        out,
        1,
        seed=11,
        params=SimParams(core=CoreParams(mpp=8.0)),
    )
    return out / made["cases"][0]["case_id"]


@pytest.fixture(scope="session")
def simulated_cases(busi_sample, tmp_path_factory) -> Callable[[int], Path]:
    """n -> a folder of n simulated biopsy cases (seed 41, 8 µm/px slides) from the vendored sample,
    made once per n and process. Shared: a test copies it (shutil.copytree) before changing it."""
    made: dict[int, Path] = {}

    def folder(n: int) -> Path:
        if n not in made:
            made[n] = tmp_path_factory.mktemp(f"simulated_{n}") / "cases"
            simulate_cases(
                busi_sample / "images",
                busi_sample / "masks",
                made[n],
                n,
                seed=41,
                params=SimParams(core=CoreParams(mpp=8.0)),
            )
        return made[n]

    return folder


def _tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ROOT with its size and modification time (ns)."""
    stats = {str(f.relative_to(root)): f.stat() for f in root.rglob("*") if f.is_file()}
    return {name: (st.st_size, st.st_mtime_ns) for name, st in stats.items()}


@pytest.fixture(scope="session")
def busi_dataset(tmp_path_factory, busi_sample) -> Iterator[Path]:
    """The vendored sample prepared once (`prepare_busi`, seed 0): images/, labels/, cases.csv.
    Shared read-only by every test that trains, calibrates or evaluates on it; the session fails at
    teardown if a test changed it (a test that edits a dataset prepares its own)."""
    from training.busi import prepare_busi  # deferred: training loads torch, which most tests never need

    out = tmp_path_factory.mktemp("busi_dataset") / "busi"
    prepare_busi(busi_sample, out, seed=0)
    before = _tree_state(out)
    yield out
    changed = sorted(set(before.items()) ^ set(_tree_state(out).items()))
    assert not changed, f"a test changed the shared prepared dataset {out}: {changed[:5]}"


@pytest.fixture(autouse=True)
def fresh_redactor(monkeypatch) -> None:
    """Each test starts with no identifier registered: the process-wide redactor would otherwise
    carry one test's DICOM identifiers (a short patient id, say) into another test's text, cutting
    paths that test looks for. Registrations made while the test runs stay until its end."""
    monkeypatch.setattr(privacy, "REDACTOR", privacy.RedactingFilter())


@pytest.fixture(scope="session")
def busi_full() -> Path:
    """The full 248-image BUSI set; CI has it, a fresh clone may not."""
    if not (FULL_BUSI / "index.csv").is_file():
        pytest.skip(f"full BUSI set not found at {FULL_BUSI} (set SONOMAP_BUSI)")
    return FULL_BUSI


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory) -> Path:
    """A folder, one per test module, for the case.yaml a test writes: beside it placeholder
    us.png, core.tif and core.geojson, the files such a case names. ``load_case`` checks that they
    exist; reading them is the stages' job."""
    folder = tmp_path_factory.mktemp("case")
    for name in ("us.png", "core.tif", "core.geojson"):
        (folder / name).write_bytes(b"placeholder")
    return folder


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    fail_if_required(outcome.get_result())  # on CI a missing Xvfb/systemd/Chromium fails, never skips


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    fail_if_required(outcome.get_result())  # the same for a whole module skipped at import


def pytest_collection_modifyitems(config, items):
    # pyproject's `timeout` bounds every test; a test marked `slow` gets SLOW_TIMEOUT_S unless it
    # names its own limit with @pytest.mark.timeout(...)
    for item in items:
        if "slow" in item.keywords and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
    gpu_items = [item for item in items if "gpu" in item.keywords]
    # asked only when a GPU test was collected: the question imports torch (seconds), which a
    # child pytest running one CPU test never needs
    if not gpu_items or has_cuda():
        return
    skip_gpu = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in gpu_items:
        item.add_marker(skip_gpu)


@pytest.fixture()
def xvfb_display():
    """Start a real Xvfb server for window tests; skip when Xvfb is not installed."""
    import subprocess

    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb)")
    # -displayfd: Xvfb picks a free display and writes its number once it accepts clients, so
    # parallel test runs on one machine never collide and no fixed sleep is needed.
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb exited before reporting its display number")
    display = f":{number}"
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    yield display
    proc.terminate()
    proc.wait(timeout=10)
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
