"""Exception types. Each message is one line that names the file or value at fault and
what was expected, so command lines can print it as it is."""


class FaceAlignmentError(Exception):
    """Base of every error this library raises on bad input or a missing resource."""


class UnknownArchitectureError(FaceAlignmentError, ValueError):
    """An architecture or model name that the registry does not know."""


class WeightsFileError(FaceAlignmentError):
    """A weight file that is missing, unreadable or not in the expected format."""


class CheckpointMismatchError(WeightsFileError):
    """Weights that do not fit the network: missing, unused or wrongly shaped tensors."""


class NonFiniteOutputError(WeightsFileError):
    """A network that gave NaN or infinite values: its weights are broken."""


class OutputExistsError(FaceAlignmentError):
    """An output file that already exists and was not to be overwritten."""


class DownloadError(FaceAlignmentError):
    """A download that failed: no network, an HTTP error or a hash mismatch."""


class BackendUnavailableError(FaceAlignmentError):
    """A compute context (e.g. cudnn) whose extension is not installed."""


class ImageReadError(FaceAlignmentError):
    """An image file that cannot be read."""


class AnnotationError(FaceAlignmentError):
    """A landmark annotation (.pts), annotation folder or prediction file that is missing,
    unreadable or not in the expected shape."""
