"""Cumulative error distribution curves of several result sets on one PNG chart."""
from typing import Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import FaceAlignmentError
from ..files import atomic_write
from .metrics import ced_curve

DPI = 100
PLOT_EXTENSIONS = (".png",)  # the chart is always a PNG: its name must say so
MIN_SIDE, MAX_SIDE = 100, 10000  # pixels; below this the axes and legend do not fit


def check_plot_size(size: Tuple[int, int]) -> Tuple[int, int]:
    """``size`` = (width, height) if a chart of that many pixels can be drawn."""
    width, height = size
    if not all(isinstance(side, int) and MIN_SIDE <= side <= MAX_SIDE for side in size):
        raise FaceAlignmentError(f"plot size {width}x{height}: expected whole numbers of pixels "
                                 f"from {MIN_SIDE} to {MAX_SIDE}")
    return width, height


def plot_ced(curves: Sequence[Tuple[str, np.ndarray]], path: str, threshold: float = 0.07,
             size: Tuple[int, int] = (800, 600), x_label: str = "NME") -> None:
    """Draw the CED of each ``(label, errors)`` pair (errors per face, +inf for missed faces)
    and write it atomically as a PNG of exactly ``size`` = (width, height) pixels.

    The x axis runs from 0 to ``threshold``, so the area under each curve divided by the
    width of the chart is that curve's AUC."""
    width, height = check_plot_size(size)
    if not curves:
        raise FaceAlignmentError(f"{path}: no curves to plot")
    # A Figure with its own Agg canvas: no pyplot, so no global state and no display needed.
    # Agg truncates the size in pixels to an integer and e.g. 113 / 100 * 100 is 112.99999...;
    # a quarter pixel more makes the truncation land on the requested size.
    figure = Figure(figsize=((width + 0.25) / DPI, (height + 0.25) / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, errors in curves:
        corners, proportions = ced_curve(errors, threshold)
        axes.plot(corners, proportions, drawstyle="steps-post", label=label)
    axes.set_xlim(0, threshold)
    axes.set_ylim(0, 1)
    axes.set_xlabel(x_label)
    axes.set_ylabel("proportion of faces")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    with atomic_write(path, force=True) as tmp:
        # Explicit format: the temporary name's extension need not be .png.
        figure.savefig(tmp, format="png", dpi=DPI)
