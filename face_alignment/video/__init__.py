"""Landmarks for every frame of a video: reading, the frame loop, box sources and tracking, smoothing, writing."""
