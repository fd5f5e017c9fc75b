"""CPU training with freed memory kept (core.allocator) against glibc's defaults.

    python -m benchmarks.allocator                 # eff, the demo road, 2 epochs each
    python -m benchmarks.allocator --arch base --epochs 1 --rounds 2

Renders the demo recordings once (not timed), then runs ``python train.py --arch ARCH
--epochs N --no-drive`` on them in a child process, alternately with
``EFFNET_STEERING_MALLOC=system`` (glibc's defaults, the baseline) and with the
project's allocator settings, ``--rounds`` times each. For each run it prints the
wall, user and system seconds and the minor page faults of the child, the training
images/s of each epoch from its ``history.csv``, and checks that both settings
trained the same weights (every loss in ``history.csv`` equal). Adds the table to
``--output`` (benchmarks/allocator.md, newest first).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.mdreport import Echo
from core import allocator
from training.cli import demo_recordings
from training.history import read_history

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("allocator.md")
TITLE = (
    "# CPU training: freed memory kept against glibc's defaults\n\n"
    "`python -m benchmarks.allocator` (see its docstring), newest first."
)
LOSSES = ("train_loss", "train_probe_mse", "val_mse")


def one_run(arch: str, epochs: int, out: Path, setting: str) -> dict:
    """Train once in a child process; its resource use and history."""
    env = {k: v for k, v in os.environ.items() if k != allocator.ENV}
    if setting == "system":
        env[allocator.ENV] = "system"
    before = set(out.glob(f"*_{arch}"))
    usage0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    log = out / f"train-{setting}.log"
    with open(log, "w") as f:
        done = subprocess.run(
            [sys.executable, "train.py", "--arch", arch, "--epochs", str(epochs), "--no-drive"]
            + ["--quiet", "--out", str(out)],
            cwd=REPO,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        sys.exit(f"train.py failed ({setting}), its last output:\n{log.read_text()[-3000:]}")
    wall, usage1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    (run,) = set(out.glob(f"*_{arch}")) - before
    rows = read_history(run / "history.csv")
    return {
        "setting": setting,
        "wall": wall,
        "user": usage1.ru_utime - usage0.ru_utime,
        "sys": usage1.ru_stime - usage0.ru_stime,
        "faults": usage1.ru_minflt - usage0.ru_minflt,
        "images_per_s": [float(r["images_per_s"]) for r in rows[1:]],
        "losses": [[r[k] for k in LOSSES] for r in rows],
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.allocator", description=__doc__)
    p.add_argument("--arch", default="eff")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1, help="runs of each setting, alternated")
    p.add_argument(
        "--output", type=Path, default=RESULTS, help="results file (default: %(default)s)"
    )
    args = p.parse_args(argv)
    if args.epochs < 1 or args.rounds < 1:
        p.error(f"--epochs and --rounds must be >= 1, got {args.epochs} and {args.rounds}")
    echo = Echo()
    with tempfile.TemporaryDirectory(prefix="allocator-bench-") as tmp:
        out = Path(tmp)
        demo_recordings(out)  # rendered once, outside the timing
        echo(
            f"python train.py --arch {args.arch} --epochs {args.epochs} --no-drive on the demo "
            f"road, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
        )
        echo(f"{'allocator':<10} {'wall s':>7} {'user s':>7} {'sys s':>7} {'faults':>10}  images/s")
        runs = []
        for _ in range(args.rounds):
            for setting in ("system", "kept"):
                r = one_run(args.arch, args.epochs, out, setting)
                runs.append(r)
                ips = ", ".join(f"{x:.1f}" for x in r["images_per_s"])
                echo(
                    f"{setting:<10} {r['wall']:7.1f} {r['user']:7.1f} {r['sys']:7.1f} "
                    f"{r['faults']:10d}  {ips}"
                )
    mean = {
        s: sum(r["wall"] for r in runs if r["setting"] == s) / args.rounds
        for s in ("system", "kept")
    }
    same = all(r["losses"] == runs[0]["losses"] for r in runs)
    echo(
        f"kept: {mean['system'] / mean['kept']:.2f}x faster in wall time (mean of {args.rounds}); "
        f"losses {'identical' if same else 'DIFFER'} across all runs"
    )
    echo.write(args.output, TITLE)


if __name__ == "__main__":
    main()
