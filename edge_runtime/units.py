"""Units and defaults every stage shares (the ground floor: imports nothing).

- :data:`MS_PER_S`: milliseconds in a second; timings are measured in seconds
  (``time.perf_counter``) and reported in milliseconds.
- :data:`DEFAULT_FPS`: the frame rate assumed when neither the source nor the config gives one.
"""

MS_PER_S = 1000.0
# The usual ultrasound scanner video-out rate (and the rate of the synthetic source); used when a
# capture card, clip or DICOM cine does not say, and for recordings of such sources.
DEFAULT_FPS = 30.0
