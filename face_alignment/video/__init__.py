"""Landmarks for every frame of a video: reading, writing, tracking and smoothing."""
