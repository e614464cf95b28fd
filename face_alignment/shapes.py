"""The sizes every part of the pipeline agrees on, each defined here once.

FAN sees a face as a 256 x 256 RGB crop and answers with one 64 x 64 heatmap per landmark of
the iBUG 68-point markup; ResNetDepth takes the crop stacked with one 256 x 256 Gaussian map
per landmark and answers with each landmark's depth. This module imports nothing, so that
evaluation and file readers can use it without loading a network runtime.
"""
NUM_LANDMARKS = 68  # the iBUG 68-point markup (300-W, Multi-PIE)
CROP_SIZE = 256  # side of the face crop FAN and ResNetDepth take, in pixels
HEATMAP_SIZE = 64  # side of FAN's heatmaps: a quarter of the crop
RGB_CHANNELS = 3
