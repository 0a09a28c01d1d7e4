"""Measurement tools: the pipeline benchmark, the soak test, per-thread CPU and the OpenIGTLink benchmark."""
