"""Exception types. Each message is one line that names the file or value at fault and
what was expected, so command lines can print it as it is."""


class FaceAlignmentError(Exception):
    """Base of every error this library raises on bad input or a missing resource."""


class UnknownArchitectureError(FaceAlignmentError, ValueError):
    """An architecture or model name that the registry does not know."""


class WeightsFileError(FaceAlignmentError):
    """A weight file that is missing, unreadable or not in the expected format."""


class WeightsNotFoundError(WeightsFileError):
    """Published weights that are nowhere on this machine and could not be downloaded."""


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


class UnreadableImageWarning(UserWarning):
    """An image file that could not be read, skipped by a call over many images; the others
    went on. The message names the file and why."""


class AnnotationError(FaceAlignmentError):
    """A landmark annotation (.pts), annotation folder or prediction file that is missing,
    unreadable or not in the expected shape."""


class VideoReadError(FaceAlignmentError):
    """A video file that is missing, not a video (a still image, text, audio only) or that
    cannot be decoded."""


class VideoTruncatedError(VideoReadError):
    """A video that breaks off: the frames before the break were read, the rest is missing or
    damaged. ``last_good_frame`` is the index of the last frame read, None if there was none."""

    def __init__(self, message: str, last_good_frame=None):
        # last_good_frame has a default, so pickling (to and from worker processes), which
        # calls the class with the message alone and then restores the attributes, keeps it.
        super().__init__(message)
        self.last_good_frame = last_good_frame


class VideoWriteError(FaceAlignmentError):
    """A video output that cannot be written: unknown container, frames of the wrong size."""


class LandmarkTableError(FaceAlignmentError):
    """A landmark table (.parquet, .json) that cannot be written or read, or rows that do not
    fit its schema."""


class PrecisionUnavailableError(BackendUnavailableError):
    """A precision this machine or these weights cannot run: bf16 on a CPU without bfloat16
    support, int8 without a model calibrated (and passed by the accuracy gate) for the weights."""


class TrainingDataError(FaceAlignmentError):
    """Training data that cannot be used: a malformed index row, landmarks of the wrong count,
    a face box outside its image, no sample left, or an option that does not fit the data."""
