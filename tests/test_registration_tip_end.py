"""A case.yaml without `pathology.tip_end` is registered with the default side (left) and says so in
report.json's warnings: on another side the label would be reversed along the tract, and it was not
said at all. A real simulated case, registered with and without the key."""

from __future__ import annotations

import json
import shutil

import yaml
from cli import simulate_biopsy, sonomap

ASSUMED = "pathology.tip_end not given: the needle-tip end of the core is taken to be on the slide's left"


def test_a_case_without_tip_end_is_registered_with_a_warning_saying_which_side(tmp_path, busi_sample):
    cases = tmp_path / "cases"
    simulate_biopsy(busi_sample, cases, n=1, seed=0)
    given = next(cases.glob("*/case.yaml")).parent
    missing = tmp_path / "missing"
    shutil.copytree(given, missing)
    case = yaml.safe_load((missing / "case.yaml").read_text())
    del case["pathology"]["tip_end"]
    (missing / "case.yaml").write_text(yaml.safe_dump(case))
    for folder, out in ((given, tmp_path / "out_given"), (missing, tmp_path / "out_missing")):
        sonomap("register", folder / "case.yaml", "--out", out)
    with_key = json.loads((tmp_path / "out_given" / "report.json").read_text())
    without = json.loads((tmp_path / "out_missing" / "report.json").read_text())
    assert not any(ASSUMED in w for w in with_key["warnings"])
    assert any(w.startswith(ASSUMED) for w in without["warnings"]), without["warnings"]
