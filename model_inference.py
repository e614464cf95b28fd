"""Landmarks for photos with FAN in NNabla (see --help, and the README)."""
import sys

from face_alignment.inference_cli import main

if __name__ == "__main__":
    sys.exit(main())
