"""Outputs: video writers (H.264 through PyAV), mask dumps and recording names."""
