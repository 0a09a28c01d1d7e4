"""Captured biopsy cases (folders written by ``sonomap live --cases``): what each lacks, and the dataset they make."""
