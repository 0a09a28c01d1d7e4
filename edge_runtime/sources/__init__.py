"""Inputs: capture devices and streams, files, DICOM cine, the synthetic source, reconnecting and corrupt-input counting."""
