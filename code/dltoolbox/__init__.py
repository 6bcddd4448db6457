"""Helpers for the course "The deep learning toolbox"."""

__version__ = "0.1.0"
