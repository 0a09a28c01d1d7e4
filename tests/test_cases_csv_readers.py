"""The three readers of a dataset's cases.csv agree: training's dataset reader (training.data.read_cases),
the concordance's patients (training.concordance.cases_folder.dataset_patients) and register-batch's kept splits
(registration.batch_dataset.previous_splits and kept_splits; its check for rows it did not write,
registration.batch.refuse_foreign_dataset, refuses malformed rows alike) read one hand-made file (saved
by a spreadsheet: byte-order mark, CRLF line ends, values padded with spaces, an extra column, a blank
line) the same way, and each refuses a malformed row with one and the same error naming the file, the
line and the column."""

from __future__ import annotations

import pytest

from edge_runtime.case_split import read_cases_csv
from edge_runtime.errors import SonomapError
from registration.batch import refuse_foreign_dataset
from registration.batch_dataset import kept_splits, previous_splits
from training.concordance.cases_folder import dataset_patients
from training.data import read_cases

ROWS = [  # id, case_id (patient), split, note
    ("a1", "p1", "train", "left lobe"),
    ("a2", "p1", "train", ""),
    ("b1", "p2", " val ", "re-cut"),
    ("c1", "p3", "test", ""),
]
EXPECTED = {"a1": ("p1", "train"), "a2": ("p1", "train"), "b1": ("p2", "val"), "c1": ("p3", "test")}


def _dataset(root, extra: str = ""):
    """DATASET with images/ and labels/ for every id and a cases.csv; ``extra`` is appended as is."""
    for folder in ("images", "labels"):
        (root / folder).mkdir(parents=True)
        for sid in [*EXPECTED, "z9"]:
            (root / folder / f"{sid}.png").write_bytes(b"")  # read_cases checks that they exist
    lines = ["id,case_id,split,note", *(",".join(r) for r in ROWS[:2]), "", *(",".join(r) for r in ROWS[2:])]
    text = "\r\n".join(lines) + "\r\n" + extra
    (root / "cases.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    return root


def _three(ds):
    """What each reader makes of DATASET, as id -> (patient, split)."""
    samples = read_cases(ds)
    patients = dataset_patients(ds)
    splits = kept_splits(previous_splits(ds), [(sid, patients[sid]) for sid in patients])
    return (
        {s.id: (s.case_id, s.split) for s in samples},
        {sid: (patient, splits[patient]) for sid, patient in patients.items()},
    )


def test_the_three_readers_agree_on_a_spreadsheets_cases_csv(tmp_path):
    by_training, by_others = _three(_dataset(tmp_path / "ds"))
    assert by_training == by_others == EXPECTED


def test_rows_keep_the_line_they_end_on(tmp_path):
    assert [r.line for r in read_cases_csv(_dataset(tmp_path / "ds") / "cases.csv")] == [2, 3, 5, 6]


@pytest.mark.parametrize(
    "row,why",
    [
        ("z9,p9,tset,", "split 'tset' is not one of"),
        ("z9,p9,train,note,more", "5 fields, the header has 4"),
        ("z9,p9", "split '' is not one of"),
        ("z9,,train,", "case_id is empty"),
        ("a1,p9,train,", "id 'a1' listed twice (first on line 2)"),
        ("z9,p1,test,", "case 'p1' is in both 'train' (line 2) and 'test'"),
        ("../z9,p9,train,", "id '../z9' must be a plain name"),
    ],
)
def test_a_malformed_row_is_one_error_naming_file_line_and_column_from_each_reader(tmp_path, row, why):
    ds = _dataset(tmp_path / "ds", extra=row + "\r\n")
    errors = []
    readers = (
        read_cases,
        dataset_patients,
        lambda d: kept_splits(previous_splits(d), [("a1", "p1")]),
        refuse_foreign_dataset,
    )
    for read in readers:
        with pytest.raises(SonomapError) as caught:
            read(ds)
        errors.append(str(caught.value))
    assert len(set(errors)) == 1, errors
    assert errors[0].startswith(f"{ds / 'cases.csv'}:7: ") and why in errors[0]
