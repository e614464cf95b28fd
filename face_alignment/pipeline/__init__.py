"""From a photo to landmarks: read, detect, crop, decode, draw."""
