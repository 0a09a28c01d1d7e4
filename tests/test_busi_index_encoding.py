"""`sonomap prepare-busi` with an index.csv that is not UTF-8: one line naming the file and line, exit
status 2, nothing written; a UTF-8 byte-order mark is no error. The real command, real files."""

from __future__ import annotations

import csv
import shutil

from cli import sonomap


def _busi_copy(busi_sample, tmp_path, index: bytes):
    busi = tmp_path / "busi"
    shutil.copytree(busi_sample, busi)
    (busi / "index.csv").write_bytes(index)
    return busi


def test_a_non_utf8_index_is_one_line_naming_the_file(tmp_path, busi_sample):
    data = (busi_sample / "index.csv").read_bytes()
    lines = data.count(b"\n")
    busi = _busi_copy(busi_sample, tmp_path, data + "benign_999,benign,1,1,1,bénin.png\n".encode("latin-1"))
    out = tmp_path / "ds"
    result = sonomap("prepare-busi", "--busi", busi, "--out", out, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{busi / 'index.csv'}:{lines + 1}: not UTF-8" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path, busi_sample):
    rows = list(csv.reader((busi_sample / "index.csv").read_text().splitlines()))
    keep = [rows[0], *[r for r in rows[1:] if r[0] in ("benign_002", "malignant_002")]]
    text = "\n".join(",".join(r) for r in keep) + "\n"
    busi = _busi_copy(busi_sample, tmp_path, b"\xef\xbb\xbf" + text.encode())
    out = tmp_path / "ds"
    sonomap("prepare-busi", "--busi", busi, "--out", out)
    assert sorted(p.stem for p in (out / "images").iterdir()) == ["benign_002", "malignant_002"]
