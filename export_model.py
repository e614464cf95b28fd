"""Export FAN / ResNetDepth weights as .nnp or ONNX (see --help)."""
import sys

from face_alignment.export_cli import main

if __name__ == "__main__":
    sys.exit(main())
