"""Captured cases as DICOM objects (image + Segmentation) and their upload to a research PACS by STOW-RS."""
