"""``python evaluate.py {replay,closed-loop,calibrate,compare} ...``: evaluate steering models
on recorded logs (open loop, closed loop, camera calibration, model comparison).
See ``python evaluate.py COMMAND --help`` and evaluation/cli.py."""

import sys

from evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
