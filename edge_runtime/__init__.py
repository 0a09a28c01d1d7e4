"""sonomap edge runtime: capture, segment and overlay ultrasound video on the cart.

This package holds the contracts shared by every stage (the model manifest and the
preprocessing function) and must import nothing from registration, training or export.
torch is imported only when the torch backend is chosen.
"""

__version__ = "0.1.0"
