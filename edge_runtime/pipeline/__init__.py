"""The frame graph (de-identify, infer, render, write) and its two schedules: replay and live."""
