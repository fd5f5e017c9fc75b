"""Telemetry as the research builds of the simulator send it, for the drive tests.

Each build's extra fields (drive/extras.py says where they were read) for one frame,
in the forms a build may use: strings with ``.`` decimals (C# ``ToString("N4")``),
with ``,`` decimals (the same on a comma-locale machine) or JSON numbers. Imported by
name, like drive_testkit.
"""

from __future__ import annotations


def selforacle(cte: float, lap: int, sector: int, crash: int, obes: int, crashes: int) -> dict:
    return {
        "brake": 0.0,
        "currentWayPoint": sector,
        "lapNumber": lap,
        "crash": crash,
        "tot_obes": obes,
        "tot_crashes": crashes,
        "cte": cte,
    }


def tum(cte: float, lap: int, sector: int, crash: int, obes: int, crashes: int) -> dict:
    return {
        **selforacle(cte, lap, sector, crash, obes, crashes),
        "distance": 12.5 * (lap * 10 + sector),
        "sim_time": 3 * (lap * 10 + sector),
        "ang_diff": -0.75,
    }


def gym(cte: float, lap: int, sector: int, hit: str = "none") -> dict:
    return {
        "cte": cte,
        "next_cte": cte / 2,
        "pos_x": 10.25,
        "pos_y": 0.5,
        "pos_z": -3.0,
        "hit": hit,
        "lap": lap,
        "sector": sector,
        "track": "lake",
    }


#: How a build writes a field's value: (floats, whole numbers) -> wire form.
ENCODINGS = {
    "strings": lambda v, whole: str(v) if whole else f"{v:.4f}",
    "comma-strings": lambda v, whole: str(v) if whole else f"{v:.4f}".replace(".", ","),
    "numbers": lambda v, whole: v,
}
WHOLE = {"currentWayPoint", "lapNumber", "crash", "tot_obes", "tot_crashes", "lap", "sector"}


def encode(fields: dict, encoding: str) -> dict:
    """``fields`` as the build would put them on the wire (text fields stay text)."""
    write = ENCODINGS[encoding]
    return {k: v if isinstance(v, str) else write(v, k in WHOLE) for k, v in fields.items()}


def selforacle_run() -> list[dict]:
    """Two laps and the start of a third, 3 sectors, as the SelfOracle build reports them.

    Lap 1: 4 frames per sector, |CTE| 0.5 but one frame at -2.0, an OBE (tot_obes 0->1)
    and the crash flag on 2 of sector 1's 4 frames. Lap 2: |CTE| 0.25, a crash
    (tot_crashes 0->1) flagged on 1 of sector 2's frames. Lap 3: 2 frames in sector 0.
    """
    frames = []
    for i in range(12):
        sector = i // 4
        cte = -2.0 if i == 6 else 0.5
        crash = int(i in (4, 5))
        frames.append(selforacle(cte, 1, sector, crash, int(i >= 4), 0))
    for i in range(12):
        sector = i // 4
        frames.append(selforacle(-0.25, 2, sector, int(i == 9), 1, int(i >= 9)))
    frames += [selforacle(0.0, 3, 0, 0, 1, 1) for _ in range(2)]
    return frames


#: What drive.quality must make of selforacle_run(), worked out by hand:
#: lap 1 sectors 100, 50, 100 -> 83.33 %; mean |CTE| (11 x 0.5 + 2) / 12 = 0.625.
#: lap 2 sectors 100, 100, 75 -> 91.67 %; lap 3 reaches 1 of 3 sectors -> 33.33 %.
#: all: (250 + 275 + 100) / 9 = 69.44 %; mean |CTE| (7.5 + 3 + 0) / 26.
SELFORACLE_EXPECTED = {
    "1": dict(frames=12, sectors="3/3", completed=250 / 3, mean=0.625, max=2.0, obes=1, crashes=0),
    "2": dict(frames=12, sectors="3/3", completed=275 / 3, mean=0.25, max=0.25, obes=0, crashes=1),
    "3": dict(frames=2, sectors="1/3", completed=100 / 3, mean=0.0, max=0.0, obes=0, crashes=0),
    "all": dict(
        frames=26, sectors="7/9", completed=625 / 9, mean=10.5 / 26, max=2.0, obes=1, crashes=1
    ),
}
