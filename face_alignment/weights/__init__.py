"""Weights: the expected layout, loading and validating .h5 files, converting PyTorch checkpoints, fetching."""
from .layout import expected_parameters
from .loading import Weights, load_weights, open_weights

__all__ = ["Weights", "expected_parameters", "load_weights", "open_weights"]
