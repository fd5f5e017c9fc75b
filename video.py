"""Make an mp4 of a drive.py recording: ``python video.py IMAGE_FOLDER [--fps 60]``."""

import sys

from tools.video import main

if __name__ == "__main__":
    sys.exit(main())
