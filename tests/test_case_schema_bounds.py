"""case.yaml values outside what a biopsy can be, and captured cases edited by hand: `sonomap register`
refuses a sampled band width no core-needle device cuts (µm typed as mm, a fuzzed 1e308, a 0.001)
in one line naming the case file and the key, before any work and without touching an earlier
output; the widths of real devices (22G to 7G) still load. `sonomap cases export` fails only the
case whose `ultrasound:` is not a section, naming its file and key, and exports the others."""

from __future__ import annotations

import shutil

import pytest
import yaml
from captured_cases import write_captured_case
from cli import sonomap
from pacs_cases import FALLBACK_ID, export

from registration.case import load_case
from registration.case_schema import MAX_CORE_WIDTH_MM, MIN_CORE_WIDTH_MM

EXIT_USER_ERROR, EXIT_SOME_FAILED = 2, 1
# sampled core widths of real devices: 22G (fine core needle) to 7G (vacuum-assisted), in mm
REAL_DEVICE_WIDTHS_MM = (0.4, 0.9, 1.6, 4.2, 4.6)


def _case_with(simulated_case, tmp_path, edit) -> tuple:
    """A copy of the simulated case whose case.yaml ``edit(case)`` changed: (case.yaml, its mapping)."""
    folder = tmp_path / "case"
    shutil.copytree(simulated_case, folder)
    path = folder / "case.yaml"
    case = yaml.safe_load(path.read_text())
    edit(case)
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    return path, case


def _needle_points(case: dict, width: float) -> None:
    """The simulated case's tract given as needle points instead, with ``needle.width_mm``."""
    case.pop("tract")
    case["needle"] = {**case["needle"], "width_mm": width}


@pytest.mark.parametrize("width", [1200, 1e6, 1e308, 0.01, 0.001, 1e-300])
@pytest.mark.parametrize("key", ["tract.width_mm", "needle.width_mm"])
def test_an_implausible_band_width_is_refused_naming_the_case_file_and_key(
    simulated_case, tmp_path, width, key
):
    def edit(case):
        if key == "tract.width_mm":
            case["tract"]["width_mm"] = width
        else:
            _needle_points(case, width)

    path, _ = _case_with(simulated_case, tmp_path, edit)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("{}")  # an earlier output stays as it was
    r = sonomap("register", path, "--out", out, check=False)
    assert r.returncode == EXIT_USER_ERROR and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{path}: {key} must be a core width in mm in [{MIN_CORE_WIDTH_MM:g}, {MAX_CORE_WIDTH_MM:g}]" in (
        r.stderr
    )
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert (out / "report.json").read_text() == "{}"


@pytest.mark.parametrize("width", REAL_DEVICE_WIDTHS_MM)
def test_the_band_widths_of_real_devices_load(simulated_case, tmp_path, width):
    path, _ = _case_with(simulated_case, tmp_path, lambda case: case["tract"].update(width_mm=width))
    assert load_case(path).tract.width_mm == width
    case = yaml.safe_load(path.read_text())  # the needle form takes the same widths
    _needle_points(case, width)
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    assert load_case(path).needle.width_mm == width


def _exportable(folder) -> None:
    path = folder / "case.yaml"
    case = yaml.safe_load(path.read_text())
    case["capture"]["pre_fire"] = {"frame": 3, "image": "prefire.png", "utc": "2026-12-01T10:00:00Z"}
    case["capture"]["study_id"] = FALLBACK_ID
    path.write_text(yaml.safe_dump(case, sort_keys=False))


@pytest.mark.parametrize("ultrasound", ["postfire.png", ["postfire.png"], 5])
def test_a_captured_case_whose_ultrasound_is_no_section_fails_alone_in_the_export(tmp_path, ultrasound):
    pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")
    cases = tmp_path / "cases"
    bad = write_captured_case(cases / "20261201T100000Z-1")
    good = write_captured_case(cases / "20261201T100001Z-2")
    for folder in (bad, good):
        _exportable(folder)
    case = yaml.safe_load((bad / "case.yaml").read_text())
    case["ultrasound"] = ultrasound  # a hand edit: `ultrasound: postfire.png`
    (bad / "case.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == EXIT_SOME_FAILED and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert (
        f"{bad.name}  FAILED: case.yaml: ultrasound: expected a section (image, "
        "mm_per_pixel, ...)" in out.stdout
    ), out.stdout
    assert f"{good.name}  {FALLBACK_ID}  wrote 2 file(s)" in out.stdout
    assert "1 of 2 case(s) exported, 1 failed" in out.stdout
    assert (tmp_path / "dcm" / FALLBACK_ID / good.name / "seg.dcm").is_file()
    assert not (tmp_path / "dcm" / FALLBACK_ID / bad.name).exists()


def test_a_band_narrower_than_a_pixel_is_refused_before_the_slide_is_read(simulated_case, tmp_path):
    """A plausible core width (0.2 mm) on a coarse scale (1 mm/px) between two pixel rows: the band
    holds no pixel, and a case labelled nowhere must not enter a dataset as registered."""

    def edit(case):
        case["ultrasound"]["mm_per_pixel"] = 1.0
        x0, y = case["tract"]["start"][0], case["tract"]["start"][1]
        case["tract"].update(
            start=[x0, int(y) + 0.5], end=[x0 + 20, int(y) + 0.5], width_mm=MIN_CORE_WIDTH_MM
        )

    path, _ = _case_with(simulated_case, tmp_path, edit)
    out = tmp_path / "out"
    r = sonomap("register", path, "--out", out, check=False)
    assert r.returncode == EXIT_USER_ERROR and "Traceback" not in r.stderr, r.stderr[-2000:]
    line = r.stderr.strip().splitlines()[-1]
    assert f"{path}: the sampled band covers no pixel: tract.width_mm 0.2 mm" in line, line
    assert "ultrasound.mm_per_pixel 1 x 1 mm" in line, line
    assert not (out / "report.json").exists()
