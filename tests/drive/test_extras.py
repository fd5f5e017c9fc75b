"""Extended telemetry of the research builds: read, answered, recorded, shown and summed up.

Every variant goes through the real server on a loopback port, sent by the
simulator-protocol client (tools.simclient) as the build would send it.
"""

from __future__ import annotations

import csv
import logging
import time

import pytest
import research_builds as rb
import socketio
from drive_testkit import StubPredictor, make_jpeg

from core.drive_log import DRIVE_EXTRAS_CSV_NAME as EXTRAS_CSV_NAME
from core.drive_log import read_drive_extras as read_extras
from core.recordings import DRIVE_CSV_NAME as CSV_NAME
from core.recordings import read_recording
from drive.dashboard import NAMESPACE
from drive.extras import FIELD_NAMES, FIELDS, ExtrasReader, research_steer
from drive.protocol import steer_payload
from drive.quality import DrivingQuality
from drive.recorder import Recorder
from drive.server import DriveServer
from tools.simclient import SimulatorClient, SimulatorProtocolError, check_steer

STOCK_KEYS = {"steering_angle", "throttle"}
RESEARCH_KEYS = STOCK_KEYS | {"brake", "confidence", "loss", "max_laps", "uncertainty"}


@pytest.fixture
def srv():
    server = DriveServer(StubPredictor(0.25), port=0, log_every=10_000, max_laps=3).start()
    try:
        yield server
    finally:
        server.shutdown()


# --------------------------------------------------------------------------- reading


def test_every_field_kind_is_read_tolerantly():
    reader = ExtrasReader()
    got = reader.read(
        {
            "steering_angle": "0.0",
            "cte": "-1,2500",  # comma locale
            "next_cte": 0.5,  # a JSON number
            "lapNumber": "2",
            "currentWayPoint": 7.0,  # a whole float is a count
            "crash": "True",
            "hit": "  barrier ",
            "track": 3,  # a number where text is expected: kept as text
            "pos_x": "",  # empty: absent
            "pos_y": None,  # null: absent
            "sector": "1,234.0000",  # thousands separator from "N4"
        }
    )
    assert got == {
        "cte": -1.25,
        "next_cte": 0.5,
        "lapNumber": 2,
        "currentWayPoint": 7,
        "crash": 1,
        "hit": "barrier",
        "track": "3",
        "sector": 1234,
    }
    assert not reader.malformed
    assert reader.read({"steering_angle": "1", "throttle": "0", "speed": "3", "image": "x"}) == {}


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("cte", "abc", "expected a number"),
        ("cte", "NaN", "finite"),
        ("cte", True, "boolean"),
        ("lap", "1.5", "whole number"),
        ("crash", "2", "0 or 1"),
        ("hit", {"object": "car"}, "expected text"),
        ("track", "x" * 20_000, "exceed"),
        ("tot_obes", [1], "number string"),
    ],
)
def test_a_malformed_value_is_left_out_and_logged_once(field, value, why, caplog):
    caplog.set_level(logging.INFO, logger="drive.extras")
    reader = ExtrasReader()
    for _ in range(3):
        assert reader.read({field: value, "sector": "4"}) == {"sector": 4}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and field in warnings[0] and why in warnings[0], warnings
    assert reader.malformed[field] == 3
    assert reader.malformed_summary().startswith(f"{field} 3 (first ")


def test_unknown_fields_are_named_once(caplog):
    caplog.set_level(logging.INFO, logger="drive.extras")
    reader = ExtrasReader()
    for _ in range(3):
        assert reader.read({"angle1": "0.1", "cte_pid": "0.2", "cte": "0.3"}) == {"cte": 0.3}
    infos = [r.getMessage() for r in caplog.records if "does not read" in r.getMessage()]
    assert infos == [
        "telemetry carries fields this server does not read: angle1, cte_pid (ignored)"
    ]


def test_research_steer_parses_as_the_selforacle_build_reads_it():
    payload = research_steer(steer_payload(0.25, 0.1), max_laps=4)
    assert set(payload) == RESEARCH_KEYS and payload["max_laps"] == "4"
    assert check_steer(payload, "selforacle") == (0.25, 0.1)
    with pytest.raises(SimulatorProtocolError, match="exactly keys"):
        check_steer(payload)  # the stock simulator's client takes two keys only
    for broken, match in (
        ({**payload, "confidence": "1.0"}, "whole number"),  # int.Parse
        ({**payload, "max_laps": 3}, "must be a string"),
        ({k: v for k, v in payload.items() if k != "loss"}, "parses loss too"),
    ):
        with pytest.raises(SimulatorProtocolError, match=match):
            check_steer(broken, "selforacle")


# --------------------------------------------------------------------------- the server

VARIANTS = {  # build -> (fields for frame i, the client's steer dialect)
    "selforacle": (lambda i: rb.selforacle(0.1 * i, 1, i, 0, 0, 0), "selforacle"),
    "tum": (lambda i: rb.tum(0.1 * i, 1, i, 0, 0, 0), "selforacle"),
    "gym": (lambda i: rb.gym(0.1 * i, 1, i), "stock"),
}


@pytest.mark.parametrize("encoding", sorted(rb.ENCODINGS))
@pytest.mark.parametrize("build", sorted(VARIANTS))
def test_each_build_is_answered_recorded_and_tracked(build, encoding, tmp_path):
    fields, dialect = VARIANTS[build]
    recorder = Recorder(tmp_path / "rec")
    decimal = "," if encoding == "comma-strings" else "."
    with (
        DriveServer(StubPredictor(0.25), port=0, recorder=recorder, max_laps=3) as srv,
        SimulatorClient(srv.url, dialect=dialect, decimal=decimal) as sim,
    ):
        for i in range(5):
            extras = rb.encode(fields(i), encoding)
            reply = sim.send_telemetry(make_jpeg(seed=i), 0, 0, 5.0, extras=extras)
            assert reply.steering == pytest.approx(0.25)  # the client checked the dialect
            expected = RESEARCH_KEYS if dialect == "selforacle" else STOCK_KEYS
            assert set(reply.data) == expected
            if dialect == "selforacle":
                assert reply.data["max_laps"] == "3"
        sim.expect_quiet(0.2)
        live = srv.quality.live()
    assert not srv.extras.malformed
    assert live["cte"] == pytest.approx(0.4) and live["lap"] == 1 and live["sector"] == 4
    rows = read_extras(tmp_path / "rec")
    with open(tmp_path / "rec" / CSV_NAME, newline="") as f:
        images = [r["image"] for r in csv.DictReader(f)]
    assert list(rows) == images and len(images) == 5  # one extras row per frame, joined
    for i, image in enumerate(images):
        sent = fields(i)
        assert set(rows[image]) == set(sent)
        for name, value in sent.items():
            cell = rows[image][name]
            if isinstance(value, str):
                assert cell == value, name
            else:
                assert float(cell) == pytest.approx(value), name


def test_stock_telemetry_changes_nothing(srv, tmp_path, jpeg):
    recorder = srv.recorder = Recorder(tmp_path / "rec")
    with SimulatorClient(srv.url) as sim:  # the stock dialect: exactly two keys
        for i in range(3):
            assert set(sim.send_telemetry(jpeg, 0, 0, 5.0 + i).data) == STOCK_KEYS
    recorder.close()
    assert srv.quality.live() is None and srv.quality.summary_lines() == []
    assert srv.dashboard.snapshot().get("track") is None
    assert sorted(p.name for p in (tmp_path / "rec").iterdir() if p.suffix == ".csv") == [CSV_NAME]


def test_malformed_extras_never_cost_a_reply(srv, jpeg, caplog):
    caplog.set_level(logging.WARNING, logger="drive.extras")
    broken = {"cte": "abc", "lap": "one", "crash": "maybe", "hit": ["car"], "sector": "2"}
    with SimulatorClient(srv.url) as sim:
        for _ in range(4):
            reply = sim.send_telemetry(jpeg, 0, 0, 5.0, extras=broken)
            assert reply.steering == pytest.approx(0.25)
        sim.expect_quiet(0.2)
    assert srv.extras.malformed == {"cte": 4, "lap": 4, "crash": 4, "hit": 4}
    warned = sorted(
        r.getMessage().split(":")[0] for r in caplog.records if r.name == "drive.extras"
    )
    assert warned == [f"telemetry field {f}" for f in ("crash", "cte", "hit", "lap")]
    assert srv.quality.live()["sector"] == 2  # the good field of the same frames is kept


def test_a_research_build_never_gets_a_reply_it_cannot_parse(srv, jpeg):
    """A bad frame's safe command and the empty-object manual mode of the SelfOracle
    build: its OnSteer parses confidence, loss and max_laps of every steer."""
    fields = rb.encode(rb.selforacle(0.2, 1, 0, 0, 0, 0), "strings")
    with SimulatorClient(srv.url, dialect="selforacle") as sim:
        assert sim.send_telemetry(jpeg, 0, 0, 5.0, extras=fields).steering == 0.25
        bad = sim.send_raw_telemetry({**fields, "speed": "1", "image": "not base64 %%%"})
        assert (bad.event, bad.steering, bad.data["max_laps"]) == ("steer", 0.0, "3")
        assert sim.send_raw_telemetry({}).event == "manual"  # its manual mode sends {}
        assert sim.send_manual().event == "manual"
        assert sim.send_telemetry(jpeg, 0, 0, 5.0, extras=fields).steering == 0.25
        sim.expect_quiet(0.2)


def test_research_replies_go_to_the_research_build_only(srv, jpeg):
    fields = rb.encode(rb.tum(0.2, 1, 0, 0, 0, 0), "strings")
    with (
        SimulatorClient(srv.url, dialect="selforacle") as research,
        SimulatorClient(srv.url) as stock,
    ):
        for _ in range(3):
            assert set(research.send_telemetry(jpeg, 0, 0, 5.0, extras=fields).data) == (
                RESEARCH_KEYS
            )
            assert set(stock.send_telemetry(jpeg, 0, 0, 5.0).data) == STOCK_KEYS


# --------------------------------------------------------------------------- quality


def test_quality_follows_the_tum_definitions():
    quality = DrivingQuality()
    for frame in rb.selforacle_run():
        quality.add(ExtrasReader().read(rb.encode(frame, "strings")))
    report = quality.report()
    assert report["frames"] == 26 and report["sectors_per_lap"] == 3
    rows = {r["lap"]: r for r in report["rows"]}
    assert list(rows) == ["1", "2", "3", "all"]
    for lap, want in rb.SELFORACLE_EXPECTED.items():
        row = rows[lap]
        assert (row["frames"], row["sectors"]) == (want["frames"], want["sectors"]), lap
        assert row["completed_pct"] == pytest.approx(want["completed"]), lap
        assert row["mean_abs_cte"] == pytest.approx(want["mean"]), lap
        assert row["max_abs_cte"] == pytest.approx(want["max"]), lap
        assert (row["obes"], row["crashes"]) == (want["obes"], want["crashes"]), lap
    lines = quality.summary_lines()
    assert lines[0].startswith("driving quality over 26 frames")
    assert lines[2].split() == ["1", "12", "3/3", "83.3", "0.625", "2.000", "1", "0"]
    assert lines[-1].split() == ["all", "26", "7/9", "69.4", "0.404", "2.000", "1", "1"]


def test_builds_without_counters_count_runs_of_frames():
    """udacity-gym / PerturbationDrive: OBEs from |CTE| > 3, crashes from hit."""
    quality = DrivingQuality()
    ctes = [0.5, 3.5, 3.6, 0.2, 4.0, 0.1]
    hits = ["none", "none", "barrier", "barrier", "none", "car"]
    for i, (cte, hit) in enumerate(zip(ctes, hits, strict=True)):
        quality.add(rb.gym(cte, 1, 1 + i // 2, hit))
    (row,) = quality.report()["rows"]
    assert (row["lap"], row["obes"], row["crashes"]) == ("1", 2, 2)
    assert row["completed_pct"] == pytest.approx((100 + 0 + 50) / 3)
    assert row["max_abs_cte"] == 4.0


def test_only_cte_gives_a_run_row_without_sectors():
    quality = DrivingQuality()
    for cte in (0.5, -1.5):
        quality.add({"cte": cte})
    (row,) = quality.report()["rows"]
    assert (row["lap"], row["sectors"], row["completed_pct"]) == ("run", None, None)
    assert row["mean_abs_cte"] == 1.0 and row["crashes"] is None
    assert quality.summary_lines()[2].split() == ["run", "2", "-", "-", "1.000", "1.500", "0", "-"]


# --------------------------------------------------------------------------- recording


def test_a_drive_recording_with_extras_reads_through_the_project_reader(tmp_path, jpeg):
    """core.recordings accepts drive_log.csv's five columns exactly: the extras go
    beside it, and the recording reads as it did before."""
    recorder = Recorder(tmp_path / "rec")
    with (
        DriveServer(StubPredictor(0.25), port=0, recorder=recorder) as srv,
        SimulatorClient(srv.url, dialect="selforacle") as sim,
    ):
        for i, frame in enumerate(rb.selforacle_run()):
            sim.send_telemetry(
                make_jpeg(seed=i), 0, 0, 3.0 + i / 10, extras=rb.encode(frame, "strings")
            )
    rec = read_recording(tmp_path / "rec")
    assert len(rec) == 26 and rec.skipped == () and rec.has_header
    assert rec.speed[5] == pytest.approx(3.5)
    extras = read_extras(tmp_path / "rec")
    assert [extras[p.name]["lapNumber"] for p in rec.centre_paths] == ["1"] * 12 + ["2"] * 12 + [
        "3"
    ] * 2
    with open(tmp_path / "rec" / EXTRAS_CSV_NAME, newline="") as f:
        assert next(csv.reader(f)) == ["image", *FIELD_NAMES]


def test_fields_table_matches_the_builds_in_the_brief():
    by_build: dict[str, set[str]] = {}
    for field in FIELDS:
        for build in field.builds:
            by_build.setdefault(build, set()).add(field.name)
    assert by_build["SelfOracle"] >= {
        "brake", "currentWayPoint", "lapNumber", "crash", "tot_obes", "tot_crashes"
    }  # fmt: skip
    assert by_build["TUM"] >= {"cte", "distance", "sim_time", "ang_diff"}
    assert by_build["udacity-gym / PerturbationDrive"] == {
        "cte", "next_cte", "pos_x", "pos_y", "pos_z", "hit", "lap", "sector", "track"
    }  # fmt: skip


# --------------------------------------------------------------------------- dashboard


def test_dashboard_state_carries_the_track_figures(srv, jpeg):
    states = []
    browser = socketio.Client(reconnection=False)
    browser.on("state", states.append, namespace=NAMESPACE)
    browser.connect(
        f"http://127.0.0.1:{srv.port}", namespaces=[NAMESPACE], transports=["websocket"]
    )
    try:
        with SimulatorClient(srv.url) as stock:
            for _ in range(3):
                stock.send_telemetry(jpeg, 0, 0, 5.0)  # the stock simulator: no track
        deadline = time.monotonic() + 5
        while not any(s.get("frames") == 3 for s in states) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert states and all("track" not in s for s in states)
        with SimulatorClient(srv.url, dialect="selforacle") as sim:
            for frame in rb.selforacle_run()[:14]:
                sim.send_telemetry(jpeg, 0, 0, 5.0, extras=rb.encode(frame, "strings"))
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not (
                states and states[-1].get("track", {}).get("lap") == 2
            ):
                time.sleep(0.02)
    finally:
        browser.disconnect()
    track = states[-1]["track"]
    assert track == {
        "cte": -0.25,
        "lap": 2,
        "sector": 0,
        "max_abs_cte_lap": 0.25,
        "frames": 14,
        "obes": 1,
        "crashes": 0,
    }
