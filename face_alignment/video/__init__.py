"""Landmarks for every frame of a video: reading, box sources and tracking, smoothing, writing."""
