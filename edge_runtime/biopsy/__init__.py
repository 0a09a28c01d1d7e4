"""Biopsy capture: each core-needle fire (or a manual mark) becomes a registration case.

- :mod:`.fire`: the per-frame fire detector (cheap: a small top-hat image and its change);
- :mod:`.needle_fit`: the needle tip and shaft, refined on the full-resolution post-fire ROI;
- :mod:`.case_writer`: one case folder per biopsy, written on a worker thread;
- :mod:`.marks`: manual marks (window key, ``POST /mark``, SIGUSR1), process-wide;
- :mod:`.observer`: the pipeline observer that ties them together (``--cases DIR``).

Layout of a case folder and the detector's method: docs/biopsy-capture.md.
"""
