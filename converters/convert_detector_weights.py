"""Thin shell over face_alignment.detection.convert_cli.main (see --help)."""
import sys

from face_alignment.detection.convert_cli import main

if __name__ == "__main__":
    sys.exit(main())
