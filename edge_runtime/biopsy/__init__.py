"""Biopsy capture: each core-needle fire (or a manual mark) becomes a registration case.

- :mod:`.fire`: the per-frame fire detector (cheap: a small top-hat image and its change);
- :mod:`.needle_fit`: the needle tip and shaft, refined on the full-resolution post-fire ROI;
- :mod:`.case_writer`: one case folder per biopsy, written on a worker thread; what it could not
  write, reported;
- :mod:`.case_yaml`: a capture's records and its ``case.yaml`` text;
- :mod:`.case_folders`: the folder's hidden and final names (sessions sharing a folder never touch
  each other's cases) and the clean-up of what a killed writer left;
- :mod:`.marks`: manual marks (window key, ``POST /mark``, SIGUSR1), process-wide;
- :mod:`.numbering`: capture numbers that go on after a restarted session's, per study and day;
- :mod:`.lock_files`: the number claims on the folder's lock file, shared by a process's sessions;
- :mod:`.observer`: the pipeline observer that ties them together (``--cases DIR``);
- :mod:`.frame_input`: what it reads off a frame (the ROI the pipeline tagged, OpenIGTLink geometry);
- :mod:`.toasts`: its banners on screen (CAPTURED, NOT SAVED, NOT CAPTURED).

Layout of a case folder and the detector's method: docs/biopsy-capture.md.
"""
