"""Landmarks in videos: where each frame's face boxes come from, tracking and smoothing."""
