"""Units and defaults every stage shares (the ground floor: imports nothing).

- :data:`MS_PER_S`: milliseconds in a second; timings are measured in seconds
  (``time.perf_counter``) and reported in milliseconds.
- :data:`DEFAULT_FPS`: the frame rate assumed when neither the source nor the config gives one.
- :data:`MM_PER_CM`, :data:`UM_PER_MM`, :data:`UM2_PER_MM2`: length and area conversions.
"""

MS_PER_S = 1000.0
# The usual ultrasound scanner video-out rate (and the rate of the synthetic source); used when a
# capture card, clip or DICOM cine does not say, and for recordings of such sources.
DEFAULT_FPS = 30.0
MM_PER_CM = 10.0  # DICOM ultrasound regions give their pixel spacing in cm
UM_PER_MM = 1000.0  # slides are measured in µm (mpp), needle tracts in mm
UM2_PER_MM2 = UM_PER_MM * UM_PER_MM
