"""The frame's way through the runtime: de-identify, then the stages (ROI, infer, render, deliver) that
the graph builds and a schedule (replay or live) drives in one direction."""
