"""Train a steering model: ``python train.py --arch eff --data REC [REC ...]``."""

import sys

from training.cli import main

if __name__ == "__main__":
    sys.exit(main())
