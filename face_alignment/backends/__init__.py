"""Where networks run: NNabla contexts (cpu, cudnn)."""
from .context import CONTEXTS, TYPE_CONFIGS, cuda_available, default_context_name, make_context
from .nnabla_net import NNablaNetwork

__all__ = ["CONTEXTS", "TYPE_CONFIGS", "NNablaNetwork", "cuda_available", "default_context_name", "make_context"]
