"""Face Alignment Network (2D-FAN, 3D-FAN, ResNetDepth) in NNabla."""
import logging as _logging

# nnabla logs "Initializing CPU extension..." at INFO on import, which would land in every
# command line's stderr. Quieten it unless the application has set a level itself.
if _logging.getLogger("nnabla").level == _logging.NOTSET:
    _logging.getLogger("nnabla").setLevel(_logging.WARNING)

__version__ = "0.1.0"
