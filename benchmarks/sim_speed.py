"""Speed of the demo-road renderer and of view synthesis (targets: >= 200 views/s, < 5 ms).

Run: ``python -m benchmarks.sim_speed``. Prints median and best time per call and adds
them to ``--output`` (benchmarks/sim_speed.md), newest first.
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.mdreport import Echo
from sim.camera import synthesize_view
from sim.render import render_view
from sim.track import make_track


def timed(fn, n=50):
    fn()  # warm caches
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.sim_speed", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).with_name("sim_speed.md"),
        help="results file (default: %(default)s)",
    )
    args = p.parse_args(argv)
    track = make_track(seed=0)
    x, y, heading = track.pose_at(900.0)
    view = render_view(track, x, y, heading)
    rows = [
        ("render_view (demo road)", timed(lambda: render_view(track, x, y, heading, s_hint=900.0))),
        ("synthesize_view 0.7 m, 0.05 rad", timed(lambda: synthesize_view(view, 0.7, 0.05))),
    ]
    echo = Echo()
    echo(f"{'what':34s} {'median ms':>10s} {'best ms':>8s} {'per s':>7s}")
    for name, (med, best) in rows:
        echo(f"{name:34s} {med:10.2f} {best:8.2f} {1e3 / med:7.0f}")
    np.testing.assert_equal(view.shape, (160, 320, 3))
    echo.write(
        args.output,
        "# Demo-road rendering and view synthesis speed\n\n"
        "`python -m benchmarks.sim_speed`, newest first.\n",
    )


if __name__ == "__main__":
    main()
