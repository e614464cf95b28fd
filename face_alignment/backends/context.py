"""NNabla compute contexts: ``cpu`` always, ``cudnn`` when nnabla's CUDA extension is installed."""
import importlib.util

from ..errors import BackendUnavailableError

CONTEXTS = ("cpu", "cudnn")
TYPE_CONFIGS = ("float", "half")
CUDA_PACKAGE = "nnabla-ext-cuda120"


def cuda_available() -> bool:
    return importlib.util.find_spec("nnabla_ext.cuda") is not None


def default_context_name() -> str:
    return "cudnn" if cuda_available() else "cpu"


def make_context(name: str = "cpu", device_id: int = 0, type_config: str = "float"):
    """An nnabla extension context, or a one-line error saying what is missing."""
    from nnabla.ext_utils import get_extension_context

    if name not in CONTEXTS:
        raise BackendUnavailableError(f"context {name!r} is not one of {', '.join(CONTEXTS)}")
    if type_config not in TYPE_CONFIGS:
        raise BackendUnavailableError(f"type config {type_config!r} is not one of {', '.join(TYPE_CONFIGS)}")
    if name == "cpu":
        if type_config != "float":
            raise BackendUnavailableError("type config 'half' needs the cudnn context; cpu runs in float")
        return get_extension_context("cpu", type_config="float")
    if not cuda_available():
        raise BackendUnavailableError(
            f"context 'cudnn' needs nnabla's CUDA extension: pip install {CUDA_PACKAGE} "
            "(the package matching your CUDA version)")
    return get_extension_context("cudnn", device_id=str(device_id), type_config=type_config)
