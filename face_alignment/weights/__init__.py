"""Weights: the expected layout, loading and validating .h5 files, converting PyTorch checkpoints, fetching."""
from .layout import expected_parameters
from .loading import LoadedWeights, load_weights

__all__ = ["LoadedWeights", "expected_parameters", "load_weights"]
