"""`sonomap cases export --dicomweb URL`: credentials come from the environment only
(docs/pacs-export.md), so a URL with a query or a fragment, where a token may be
(``?access_token=...``), is refused in one line pointing to the token variable, before any case is
tried, and the token is printed nowhere. (Kept as it is, the client would also post to
``/dicom-web?access_token=.../studies``, the query before the path, which a server answers 404.)"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from captured_cases import write_captured_case
from loopback import free_port
from pacs_cases import FALLBACK_ID, export

pytest.importorskip("dicomweb_client.api", reason="dicomweb-client not installed (pacs extra)")

EXIT_USER_ERROR = 2
SECRET = "s3cr3t-t0ken-4711"


@pytest.mark.parametrize(
    "tail",
    [f"?access_token={SECRET}", f"?token={SECRET}&x=1", f"#{SECRET}", "?"],
)
def test_a_url_with_a_query_or_fragment_is_refused_without_printing_it(tmp_path, tail):
    cases = tmp_path / "cases"
    folder = write_captured_case(
        cases / "20260101T100000Z-1", np.zeros((120, 200), bool), study_id=FALLBACK_ID
    )
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["capture"]["pre_fire"] = {"frame": 3, "image": "prefire.png", "utc": "2026-01-01T10:00:00Z"}
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    root = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens: nothing could be sent anyway
    out = export(cases, "--dicomweb", root + tail)
    assert out.returncode == EXIT_USER_ERROR and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert out.stdout == ""  # not even the header line with the URL
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"sonomap cases: error: --dicomweb {root}: give the DICOMweb root alone")
    assert "$SONOMAP_DICOMWEB_TOKEN" in lines[0]
    assert SECRET not in out.stdout + out.stderr
