"""``python evaluate.py {replay,closed-loop,path,calibrate,compare,robustness,response} ...``:
evaluate steering models on recorded logs (open loop, closed loop, the reference path,
camera calibration, model comparison, robustness to image corruptions, the answer to a
displacement against the recovery label).
See ``python evaluate.py COMMAND --help``, evaluation/cli.py (the options) and
evaluation/commands.py (what each command does)."""

import sys

from evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
