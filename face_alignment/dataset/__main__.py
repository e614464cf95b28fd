"""``python -m face_alignment.dataset``: see face_alignment.dataset.cli."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
