"""Thin shell over face_alignment.weights.cli.convert_main (see --help)."""
import sys

from face_alignment.weights.cli import convert_main

if __name__ == "__main__":
    sys.exit(convert_main())
