"""The live prediction a biopsy capture saves beside its pre-fire image, as stored: the contract
between the writer (:mod:`edge_runtime.biopsy.case_writer`) and its readers in other stages (the
PACS export, ``registration/pacs/case_images.py``; the concordance, ``training/concordance/cores.py``).

``prefire_mask.png`` holds 8-bit class numbers; ``prefire_prob.png`` holds 16-bit
``round(probability * prob_scale)``, with ``capture.prediction.prob_scale`` :data:`PROB_SCALE`.
"""

from __future__ import annotations

import numpy as np

MAX_PROB_SCALE = int(np.iinfo(np.uint16).max)  # prefire_prob.png is 16-bit: no larger scale reaches p = 1
MAX_CLASS = int(np.iinfo(np.uint8).max)  # prefire_mask.png is 8-bit: the largest class number it holds
PROB_SCALE = MAX_PROB_SCALE  # what the capture writes: the PNG's whole range
