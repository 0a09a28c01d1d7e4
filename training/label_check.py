"""Whether a split's labels hold the cancer a command learns, scores or fits, checked before its result
is kept (before any work in train and calibrate).

The dataset contract (:mod:`training.data`): a label pixel is 0 tissue, 1 cancer or 255 unknown
(ignored). A lesion mask saved as 0/255, the usual export of a binary mask, passes the value check
(every value is allowed), but its lesion is read as "unknown": it would be ignored by the loss, by
every metric and by every calibration fit, and the figures would be silently wrong.

Input: the samples of one split and their labels, already read, the dataset folder
and the split's name. Output: nothing, or an :class:`edge_runtime.errors.InputError` in one line
naming the dataset's cases.csv, the split and, when one looks like a 0/255 lesion mask
(:func:`looks_like_0_255_mask`), that label file with the values and share found in it.

- :func:`check_split_cancer` with ``always=True`` (train's train split; calibrate's split): a
  split without any cancer pixel is refused whatever its labels look like: nothing can be learnt or
  fitted from it.
- With ``always=False`` (train's val split, evaluate's split): a split of images without cancer is
  legitimate (benign images), so it is refused only when one of its labels looks like a 0/255 mask.
- A split that holds cancer in some labels is checked label by label: every label that looks like a
  0/255 lesion mask is named in one warning (``sonomap.labels``), since its lesion would be ignored
  while the others are scored. A warning, not a refusal: the command can do its work on the split,
  and such a label is also a valid one under the contract (tissue with an unknown region: an
  annotator's unsure area, a registration band wider than the unknown rest), which no option could
  then let through; the warning names the files to look at.

Where the labels come from: train passes the labels it holds in memory already; calibrate, which
holds its split's images and labels in memory for its fit anyway, reads each pair once with
:func:`read_checked` and gets the pairs only once the split passed, so it refuses before its model
runs; evaluate reads each label once, for its scores, and feeds that same array to a
:class:`SplitCheck` (:meth:`SplitCheck.add` per label, :meth:`SplitCheck.finish` once the split is
read), so no label file is read twice. A label that
breaks the contract (values, size, channels, bit depth) is refused by that one read
(:func:`training.data.read_pair`); whether a split is refused as a whole is known only once its last
label is read.

The needle-tract exception: a label ``sonomap register`` writes for a core without cancer also holds
only 0 and 255, but as a thin known band (0) in an unknown (255) image, so 255 is its majority and it
is never taken for a 0/255 mask (:func:`looks_like_0_255_mask`), neither in a split's refusal nor in
the per-label warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from edge_runtime.case_split import CASES_CSV
from edge_runtime.errors import InputError
from training.data import CANCER, IGNORE_INDEX, Sample, read_pair

CONTRACT = "labels are 0 tissue, 1 cancer, 255 unknown (ignored)"
log = logging.getLogger("sonomap.labels")


def looks_like_0_255_mask(label: np.ndarray) -> bool:
    """Whether LABEL holds only 0 and 255, with 255 on fewer pixels than 0: a lesion on a labelled
    background, as a binary mask saved as 0/255 looks. A label written by ``sonomap register`` for an
    image without cancer also holds only 0 and 255, but its known pixels are a thin needle-tract band
    in an unknown (255) image, so 255 is the majority there and it is not taken for a mask."""
    unknown = np.count_nonzero(label == IGNORE_INDEX)
    tissue = np.count_nonzero(label == 0)
    return 0 < unknown < tissue and unknown + tissue == label.size


class SplitCheck:
    """:func:`check_split_cancer` one label at a time, for a command that reads each label once for its
    own work: :meth:`add` each label as it is read, then :meth:`finish` once the whole split is read.
    Only a count and the names of the 0/255-looking labels are kept, never a label."""

    def __init__(self, data: str | Path, split: str, consequence: str, always: bool):
        self.data, self.split, self.consequence, self.always = Path(data), split, consequence, always
        self.cancer = False
        self.suspects: list[tuple[Path, str]] = []  # (label file, what it holds)
        self.labels = 0  # labels added: a split of cancer-free images is named with its size
        self.known = False  # whether any label holds a known pixel (0 or 1), not only 255

    def add(self, sample: Sample, label: np.ndarray) -> None:
        """Count SAMPLE's LABEL (already read and validated)."""
        self.cancer = self.cancer or bool((label == CANCER).any())
        self.known = self.known or bool((label != IGNORE_INDEX).any())
        self.labels += 1
        if looks_like_0_255_mask(label):
            share = np.count_nonzero(label == IGNORE_INDEX) / label.size
            self.suspects.append(
                (Path(sample.label), f"holds only 0 and 255 (255 on {share:.1%} of its pixels, no 1)")
            )

    def _in_dataset(self, path: Path) -> str:
        """``path`` as a log line names it: from the dataset folder's base name down, never the folders
        above it (one may be named after the patient); the error names the file as given."""
        try:
            inside = path.relative_to(self.data)
        except ValueError:
            inside = Path(path.name)
        return f"{self.data.resolve().name}/{inside.as_posix()}"

    def finish(self) -> None:
        """The verdict on the labels added: an InputError, a warning, or nothing (see the module)."""
        cases_csv = self.data / CASES_CSV
        if self.cancer:
            if self.suspects:
                log.warning(
                    "%s: split '%s': %d label(s) look like a lesion mask saved as 0/255, whose lesion is "
                    "read as unknown and ignored while the other labels' cancer counts (%s): %s; if they "
                    "are lesion masks, save their lesion as 1",
                    self._in_dataset(cases_csv),
                    self.split,
                    len(self.suspects),
                    CONTRACT,
                    "; ".join(f"{self._in_dataset(label)} {held}" for label, held in self.suspects),
                )
            return
        suspect = " ".join(map(str, self.suspects[0])) if self.suspects else None
        if suspect is None and not self.always:
            return
        if suspect:
            hint = f"; {suspect}: if it is a lesion mask saved as 0/255, save its lesion as 1"
        elif not self.known:  # every pixel unknown: not cancer-free, unlabelled
            hint = f"; its {self.labels} image(s) have no labelled pixel at all (every pixel 255, unknown): label them"
        else:  # register-batch keeps each patient in the split first given: slides that come back in
            # batches can leave every core with cancer in val or test for a while
            hint = (
                f"; its {self.labels} image(s) are all cancer-free: register cases with cancer until this split "
                f"gets one, or move one patient's rows to '{self.split}' in {CASES_CSV}"
            )
        raise InputError(
            f"{cases_csv}: split '{self.split}' has no cancer pixel (no label holds 1), "
            f"{self.consequence}; {CONTRACT}{hint}"
        )


def check_split_cancer(
    samples: Sequence[Sample],
    data: str | Path,
    split: str,
    consequence: str,
    always: bool,
    labels: Iterable[np.ndarray],
) -> None:
    """Refuse SPLIT of DATA (its SAMPLES, and their LABELS, read in the same order) when no label holds a
    cancer pixel: always (``always=True``), or only when a label looks like a 0/255 lesion mask.
    CONSEQUENCE says what the command could not do (e.g. "so the model would never learn cancer").
    Raises InputError naming DATA's cases.csv and the first 0/255-looking label with its values.
    A split with cancer whose other labels look like 0/255 masks: one warning naming each of them."""
    check = SplitCheck(data, split, consequence, always)
    for sample, label in zip(samples, labels, strict=True):
        check.add(sample, label)
    check.finish()


def read_checked(
    samples: Sequence[Sample], data: str | Path, split: str, consequence: str, always: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each of SAMPLES' (gray, label), read and validated once (:func:`training.data.read_pair`), in
    order; returned only once the split passed :func:`check_split_cancer` on those same labels. For a
    command that holds the whole split in memory anyway (calibrate): it refuses before any work, and
    no file is read twice."""
    check = SplitCheck(data, split, consequence, always)
    pairs = []
    for sample in samples:
        gray, label = read_pair(sample)
        check.add(sample, label)
        pairs.append((gray, label))
    check.finish()
    return pairs
