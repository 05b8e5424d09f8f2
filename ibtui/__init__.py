"""ibtui: a terminal laboratory for the information plane of neural networks."""

__version__ = "0.1.0"
