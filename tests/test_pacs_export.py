"""Captured biopsy cases into a research PACS: the real capture (`sonomap replay --cases` on the
synthetic procedure clip) makes the cases, `sonomap cases export` turns them into a Secondary Capture
image + a Segmentation per case and sends them by STOW-RS to a real Orthanc with its DICOMweb plugin;
QIDO-RS finds them by the study ID and the SEG fetched by WADO-RS decodes to the saved mask."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import yaml
from loopback import free_port
from orthanc_server import start_orthanc
from pacs_cases import OBJECTS_PER_CASE, STUDY_ID, case_folders, cases, clip, export  # noqa: F401 (fixtures)
from test_http_guard import certificate  # noqa: F401 (a fixture)
from tls_relay import TlsRelay

highdicom = pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")
dicomweb_api = pytest.importorskip("dicomweb_client.api", reason="dicomweb-client not installed (pacs extra)")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    yield from start_orthanc(tmp_path_factory.mktemp("orthanc"))


def _auth(server) -> dict:
    return {"SONOMAP_DICOMWEB_BASIC": f"{server.user}:{server.password}"}


def _client(server):
    from dicomweb_client.session_utils import create_session_from_user_pass

    return dicomweb_api.DICOMwebClient(
        server.dicomweb, session=create_session_from_user_pass(server.user, server.password)
    )


def _cancer_mask(folder: Path) -> np.ndarray:
    pred = yaml.safe_load((folder / "case.yaml").read_text())["capture"]["prediction"]
    return cv2.imread(str(folder / pred["mask"]), cv2.IMREAD_UNCHANGED) == pred["cancer_class"]


def test_capture_records_the_study_id(cases):
    for folder in case_folders(cases):
        assert yaml.safe_load((folder / "case.yaml").read_text())["capture"]["study_id"] == STUDY_ID


def test_export_to_orthanc_qido_finds_the_study_and_the_seg_decodes_to_the_mask(cases, orthanc):
    folders = case_folders(cases)
    out = export(cases, "--dicomweb", orthanc.dicomweb, env=_auth(orthanc))
    assert out.returncode == 0, out.stdout + out.stderr
    for folder in folders:
        assert f"{folder.name}  {STUDY_ID}  sent 2 instance(s): pre-fire image, binary SEG" in out.stdout
    assert orthanc.rest("/statistics")["CountInstances"] == OBJECTS_PER_CASE * len(folders)

    client = _client(orthanc)
    studies = client.search_for_studies(search_filters={"StudyID": STUDY_ID})
    assert len(studies) == 1  # one session, one study
    assert client.search_for_studies(search_filters={"PatientID": "BX-0041"}) == []
    found = client.search_for_instances(search_filters={"PatientID": STUDY_ID, "Modality": "SEG"})
    assert len(found) == len(folders)
    images = {
        pydicom.Dataset.from_json(i).SOPInstanceUID
        for i in client.search_for_instances(search_filters={"PatientID": STUDY_ID, "Modality": "US"})
    }
    assert len(images) == len(folders)
    mm = yaml.safe_load((folders[0] / "case.yaml").read_text())["ultrasound"]["mm_per_pixel"]
    for item in found:
        ref = pydicom.Dataset.from_json(item)
        seg = highdicom.seg.Segmentation.from_dataset(
            client.retrieve_instance(ref.StudyInstanceUID, ref.SeriesInstanceUID, ref.SOPInstanceUID)
        )
        ((_, _, source_uid),) = seg.get_source_image_uids()
        assert source_uid in images
        number = int(seg.SeriesDescription.split()[1])  # "biopsy N live prediction (binary)"
        folder = next(f for f in folders if f.name.endswith(f"-{number}"))
        decoded = seg.get_pixels_by_source_instance([source_uid], segment_numbers=[1])[0, :, :, 0]
        assert decoded.any() and np.array_equal(decoded.astype(bool), _cancer_mask(folder))
        assert seg.PatientID == seg.PatientName == seg.StudyID == STUDY_ID
        sha = yaml.safe_load((folder / "case.yaml").read_text())["capture"]["model"]["sha256"]
        algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
        assert algorithm.AlgorithmVersion == sha and sha in seg.SoftwareVersions
        image = client.retrieve_instance(ref.StudyInstanceUID, *_series_and_uid(client, source_uid))
        assert np.array_equal(
            image.pixel_array, cv2.imread(str(folder / "prefire.png"), cv2.IMREAD_UNCHANGED)
        )
        assert [float(v) for v in image.PixelSpacing] == pytest.approx([mm, mm])
        assert (
            image.PatientBirthDate == "" and image.PatientSex == "" and image.PatientIdentityRemoved == "YES"
        )
        assert "procedure.mp4" not in str(image) + str(seg)  # the source file name may carry a name

    again = export(cases, "--dicomweb", orthanc.dicomweb, env=_auth(orthanc))
    assert again.returncode == 0, again.stdout + again.stderr
    assert orthanc.rest("/statistics")["CountInstances"] == OBJECTS_PER_CASE * len(folders)  # same UIDs


def _series_and_uid(client, sop_uid: str) -> tuple[str, str]:
    (item,) = client.search_for_instances(search_filters={"SOPInstanceUID": sop_uid})
    ds = pydicom.Dataset.from_json(item)
    return ds.SeriesInstanceUID, ds.SOPInstanceUID


def test_a_refused_upload_names_each_case_and_the_status_and_exits_nonzero(cases, orthanc):
    folders = case_folders(cases)
    wrong = {"SONOMAP_DICOMWEB_BASIC": f"{orthanc.user}:wrong-password"}
    out = export(cases, "--dicomweb", orthanc.dicomweb, env=wrong)
    assert out.returncode == 1
    for folder in folders:  # the first failure does not stop the rest
        assert f"{folder.name}  FAILED: upload failed: HTTP 401" in out.stdout
    assert "wrong-password" not in out.stdout + out.stderr
    stopped = export(cases, "--dicomweb", orthanc.dicomweb, "--stop-on-error", env=wrong)
    assert stopped.returncode == 1 and stopped.stdout.count("FAILED") == 1
    assert f"0 of {len(folders)} case(s) exported, 1 failed, {len(folders) - 1} not tried" in stopped.stdout


def test_credentials_come_from_the_environment_and_never_show(cases, orthanc):
    token = "tok-" + "s3cr3t" * 4
    out = export(cases, "--dicomweb", orthanc.dicomweb, env={"SONOMAP_DICOMWEB_TOKEN": token})
    assert out.returncode == 1 and out.stdout.count("FAILED: upload failed: HTTP 401") == len(
        case_folders(cases)
    )
    assert token not in out.stdout + out.stderr  # Orthanc takes basic auth only: the bearer token is refused
    both = export(
        cases, "--dicomweb", orthanc.dicomweb, env={"SONOMAP_DICOMWEB_TOKEN": token, **_auth(orthanc)}
    )
    assert both.returncode != 0 and "keep one" in both.stderr and token not in both.stderr
    in_url = orthanc.dicomweb.replace("http://", f"http://{orthanc.user}:{orthanc.password}@")
    refused = export(cases, "--dicomweb", in_url)
    assert refused.returncode != 0 and "not in the URL" in refused.stderr
    assert orthanc.password not in refused.stdout + refused.stderr
    unset = export(cases, "--dicomweb", orthanc.dicomweb, "--basic-auth-env", "SONOMAP_NO_SUCH_VAR")
    assert unset.returncode != 0 and "SONOMAP_NO_SUCH_VAR" in unset.stderr


def test_an_unreachable_pacs_fails_each_case_with_no_answer(cases):
    url = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens there
    out = export(cases, "--dicomweb", url, "--timeout", "5")
    assert out.returncode == 1
    assert out.stdout.count("FAILED: upload failed: no answer: ConnectionError") == len(case_folders(cases))


@pytest.fixture(scope="module")
def https_pacs(orthanc, certificate):
    """The test's Orthanc behind HTTPS, with a self-signed certificate (a site's own CA)."""
    from urllib.parse import urlsplit

    cert, key = certificate
    relay = TlsRelay(urlsplit(orthanc.base).port, cert, key)
    yield f"https://127.0.0.1:{relay.port}/dicom-web", cert
    relay.close()


def test_https_pacs_with_the_sites_own_ca(cases, orthanc, https_pacs):
    """A PACS whose certificate is signed by a CA the public bundle does not hold: refused without
    --ca-bundle, sent with it."""
    url, cert = https_pacs
    before = orthanc.rest("/statistics")["CountInstances"]
    refused = export(cases, "--dicomweb", url, env=_auth(orthanc))
    assert refused.returncode == 1
    hint = "FAILED: upload failed: no answer: SSLError: the server's certificate is not trusted: give --ca-bundle"
    assert refused.stdout.count(hint) == len(case_folders(cases))
    assert orthanc.rest("/statistics")["CountInstances"] == before
    sent = export(cases, "--dicomweb", url, "--ca-bundle", cert, env=_auth(orthanc))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert sent.stdout.count("sent 2 instance(s)") == len(case_folders(cases))
    missing = export(cases, "--dicomweb", url, "--ca-bundle", cert.parent / "nope.pem")
    assert missing.returncode != 0 and "--ca-bundle" in missing.stderr and "no such file" in missing.stderr
