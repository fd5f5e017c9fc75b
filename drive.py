"""Serve a steering model to the Udacity simulator: ``python drive.py MODEL [IMAGE_FOLDER]``."""

import sys

from drive.cli import main

if __name__ == "__main__":
    sys.exit(main())
