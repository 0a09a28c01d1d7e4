"""A case.yaml with every key, commented: printed by `sonomap register --example`, validated by the tests."""

CASE_EXAMPLE = """\
id: case_0001                 # default: the folder name, when it is a study ID (P-0042) or a capture's
patient_id: P0001             # groups cases for the dataset split (default: id)
source: {dataset: BUSI}         # free-form provenance; never a file name or patient detail
ultrasound:
  image: us.png               # PNG/JPEG, or DICOM (.dcm) with SequenceOfUltrasoundRegions
  mm_per_pixel: 0.1           # PNG/JPEG: required (number or [x, y]); DICOM: read from the file
  frame: 0                    # DICOM cine: frame index (the post-fire frame showing the needle)
  dataset_image: us.png       # optional: the frame that goes into the dataset (e.g. pre-fire, same
  dataset_frame: 0            #   probe position), so the label is not painted over the needle echo
needle:                       # or `needle: auto`
  tip: [412, 300]             # pixels, or `auto` (detect the needle echo)
  shaft: [120, 160]           # a second point on the shaft
  gauge: 14                   # 14 | 16 | 18: sets the defaults below
  notch_mm: 19                # sampling-notch length
  tip_offset_mm: 5            # needle tip -> distal end of the notch
  width_mm: 1.6               # sampled band width (core diameter)
tract:                        # optional: the sampled segment itself (overrides needle geometry)
  start: [200, 210]           # proximal end of the notch (pixels)
  end: [380, 290]             # distal end (towards the needle tip)
  width_mm: 1.6
pathology:
  wsi: core.tif               # pyramidal TIFF/OME-TIFF/SVS/NDPI/MRXS, DICOM WSI (.dcm), or a PNG/JPEG thumbnail
  reader: auto                # auto (the reader that opens the file) | tifffile | openslide
  roi: [0, 0, 40000, 3000]    # optional: level-0 box holding one section of the core (slides
                              #   often carry 2-3 serial sections; only this one is used)
  mpp: 4.0                    # microns per level-0 pixel; needed when the file has none
  annotations: core.geojson   # QuPath GeoJSON or ASAP XML (level-0 pixels)
  annotation_mpp: 4.0         # microns per annotation pixel (default: level-0 mpp)
  cancer_classes: [Tumor]     # classification names that count as cancer
  ignore_classes: [Stroma]    # names that are known and ignored; others fail loudly
  exclude_classes: [Exclusion] # names whose polygons are cut out of cancer (ASAP _2, exclusion)
  tip_end: left               # slide side nearest the needle-tip end of the core
  shrinkage: 0.85             # slide length / fresh length; instead, you may give
# fresh_length_mm: 19.0       #   the measured fresh core length
  flip_across: false          # mirror across-core -> across-tract
  fragments: 2                # optional: pieces the lab counted (checked by the quality score)
  patient_id: P0001           # optional: the lab's pseudonymous patient id (top-level patient_id wins)
"""
