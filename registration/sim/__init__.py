"""Simulated biopsy cases and the registration benchmarks that score against them."""
