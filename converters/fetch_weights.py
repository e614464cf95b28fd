"""Thin shell over face_alignment.weights.cli.fetch_main (see --help)."""
import sys

from face_alignment.weights.cli import fetch_main

if __name__ == "__main__":
    sys.exit(fetch_main())
