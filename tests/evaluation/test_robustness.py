"""``evaluate.py robustness`` and ``compare --robustness`` end to end on generated data,
with the figures re-derived independently (the Keras model on the corrupted frames)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from evaluation.cli import main


@pytest.fixture(autouse=True)
def _quiet_root_logger():
    yield
    logging.getLogger().setLevel(logging.WARNING)


def _keras_steering(model_path, frames: np.ndarray) -> np.ndarray:
    import keras

    model = keras.models.load_model(model_path)
    return model.predict(frames.astype(np.float32), verbose=0, batch_size=32)[:, 0]


def test_robustness_writes_the_report_on_a_short_stretch(tiny_run, demo_log_long, tmp_path):
    from core.recordings import decode_images, read_recording
    from evaluation.robustness.benchmark import frame_rows
    from evaluation.robustness.corruptions import corrupt_batch

    out = tmp_path / "rob"
    args = ["robustness", str(tiny_run), str(demo_log_long), "--out", str(out), "-q"]
    args += ["--frames", "24", "--corruptions", "gaussian_noise,fog,shadow"]
    args += ["--intensities", "1,5", "--closed-loop-corruptions", "fog,shadow"]
    args += ["--closed-loop-intensities", "5", "--drive-seconds", "4", "--seed", "3"]
    assert main([*args, "--repeats", "3", "--repeat-noise", "0.05"]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {
        "robustness.json",
        "robustness.md",
        "heatmap_shift.png",
        "heatmap_error.png",
        "heatmap_autonomy.png",
        "corruptions.png",
    }
    r = json.loads((out / "robustness.json").read_text())
    ol = r["open_loop"]
    assert ol["frames"] == 24 and r["seed"] == 3 and r["runtime"] == "litert"
    assert set(ol["corrupted"]) == {"gaussian_noise", "fog", "shadow"}
    assert set(ol["corrupted"]["fog"]) == {"1", "5"}
    # The same figures from the Keras model on the same frames, corrupted again here.
    rec = read_recording(demo_log_long)
    rows = frame_rows(len(rec), 24)
    frames = decode_images(list(rec.centre_paths[rows]), progress=False)
    human = np.asarray(rec.steering)[rows]
    clean = _keras_steering(tiny_run / "model.keras", frames)
    assert ol["clean"]["mae"] == pytest.approx(np.abs(clean - human).mean(), abs=1e-4)
    foggy = _keras_steering(
        tiny_run / "model.keras", corrupt_batch(frames, "fog", 5, seed=3, keys=rows)
    )
    assert ol["corrupted"]["fog"]["5"]["shift"] == pytest.approx(
        np.abs(foggy - clean).mean(), abs=1e-4
    )
    assert ol["corrupted"]["fog"]["5"]["mae"] == pytest.approx(
        np.abs(foggy - human).mean(), abs=1e-4
    )
    cl = r["closed_loop"]
    assert cl["criterion"] == "road" and cl["intensities"] == [5]
    assert set(cl["corrupted"]) == {"fog", "shadow"}
    for fig in [cl["clean"], *[d["5"] for d in cl["corrupted"].values()]]:
        assert 3.5 <= fig["elapsed_s"] <= 4.2  # --drive-seconds 4
        assert fig["autonomy_percent"] == pytest.approx(
            100 * (1 - 6 * fig["interventions"] / fig["elapsed_s"])
        )
    assert set(cl["baselines"]) == {"constant +0", "human replay +0.02"}
    # --repeats 3: the clean drive thrice (the first the model's own), corrupted ones once.
    spread = cl["clean"]["repeats"]["interventions"]
    assert cl["clean"]["repeats"]["drives"] == 3 and cl["repeat_noise"] == 0.05
    assert spread["values"][0] == cl["clean"]["interventions"]
    assert spread["mean"] == pytest.approx(np.mean(spread["values"]))
    assert all("repeats" not in d["5"] for d in cl["corrupted"].values())
    assert r["summary"]["closed_loop"]["clean_interventions_spread"] == spread
    s = r["summary"]
    assert s["mean_shift"] == pytest.approx(
        np.mean([v["shift"] for d in ol["corrupted"].values() for v in d.values()])
    )
    text = (out / "robustness.md").read_text()
    assert "| fog |" in text and "## Closed loop" in text and "ImageNet-C" in text
    counts = ", ".join(f"{v:.0f}" for v in spread["values"])
    assert "over 3 clean drives (the 2nd and later with 0.05 steering noise" in text
    assert f"`--repeats`) {counts}: mean {spread['mean']:.1f}" in text


def test_the_closed_loop_hook_corrupts_what_the_policy_sees(demo_log_long):
    from core.recordings import read_recording
    from evaluation.closed_loop.loop import LoopConfig
    from evaluation.closed_loop.policies import Policy
    from evaluation.closed_loop.run import build_references, evaluate_recordings

    refs = build_references([read_recording(demo_log_long)], LoopConfig().camera, progress=False)
    seen, keys = [], []

    class Spy(Policy):
        name = "spy"

        def __call__(self, views, ctx):
            seen.append(int(views.max()))
            return np.zeros(len(views))

    def black(view, key):
        keys.append(key)
        return np.zeros_like(view)

    evaluate_recordings(
        refs, Spy(), LoopConfig(), recovery_points=0, progress=False, transform=black
    )
    assert seen and max(seen) == 0  # every view the policy got was the transformed one
    rows = np.concatenate([seg.path.rows for seg in refs[0].segments])
    assert set(keys) <= set(rows.tolist()) and len(set(keys)) > 50


def test_bad_arguments_and_a_taken_output_folder(tiny_model_path, demo_log, tmp_path, caplog):
    out = tmp_path / "r"
    base = ["robustness", str(tiny_model_path), str(demo_log), "--out", str(out), "-q"]
    cases = [
        (["--corruptions", "fog,hail"], "unknown corruption 'hail'; expected one of: "),
        (["--intensities", "1,7"], "intensity 7 is outside 1-5"),
        (["--closed-loop-intensities", "0"], "outside 1-5"),
        (["--drive-seconds", "-1"], "--drive-seconds must be >= 0 (0: whole stretches)"),
        (["--repeat-noise", "-1"], "repeat noise must be >= 0 (steering units). Received: -1.0"),
        (["--grid-frame", "100"], "--grid-frame 100: demo_rec has rows 0-99"),
    ]
    for extra, message in cases:
        caplog.clear()
        assert main([*base, *extra]) == 2, extra
        assert message in caplog.text, (extra, caplog.text)
    out.mkdir(exist_ok=True)
    (out / "robustness.json").write_text("{}")
    caplog.clear()
    assert main([*base, "--no-closed-loop", "--frames", "2"]) == 2
    assert "already holds files" in caplog.text and "--overwrite" in caplog.text
    assert (out / "robustness.json").read_text() == "{}"
    small = ["--no-closed-loop", "--frames", "4", "--corruptions", "fog", "--intensities", "2"]
    assert main([*base, *small, "--overwrite"]) == 0
    assert json.loads((out / "robustness.json").read_text())["intensities"] == [2]


def test_compare_robustness_from_reports_and_measured(
    tiny_model_path, tiny_run, demo_log, tmp_path, caplog
):
    folders = []
    for i, model in enumerate((tiny_run, tiny_model_path)):
        folders.append(tmp_path / f"r{i}")
        args = ["robustness", str(model), str(demo_log), "--out", str(folders[-1]), "-q"]
        args += ["--no-closed-loop", "--frames", "16", "--corruptions", "fog,rain"]
        assert main([*args, "--intensities", "1,3"]) == 0
    reports = [json.loads((f / "robustness.json").read_text()) for f in folders]
    out = tmp_path / "cmp"
    args = ["compare", str(tiny_run), str(tiny_model_path), "--logs", str(demo_log), "-q"]
    args += ["--no-closed-loop", "--latency-runs", "5", "--out", str(out)]
    assert main([*args, "--robustness", *map(str, folders)]) == 0
    data = json.loads((out / "compare.json").read_text())["robustness"]
    assert data["baseline"] == tiny_run.name
    base, other = data["models"]
    assert base["mce"] == pytest.approx(1.0) and base["shift_ratio"] == pytest.approx(1.0)
    e = [
        [sum(r["open_loop"]["corrupted"][c][s]["mae"] for s in ("1", "3")) for c in ("fog", "rain")]
        for r in reports
    ]
    assert other["mce"] == pytest.approx(np.mean([e[1][0] / e[0][0], e[1][1] / e[0][1]]))
    text = (out / "report.md").read_text()
    assert "## Robustness under image corruptions" in text and "mCE" in text
    assert (out / "bar_mce.png").is_file()
    # Reports in the wrong order are refused, naming the mismatch; nothing is written.
    caplog.clear()
    bad = [*args[:-1], str(tmp_path / "cmp2"), "--robustness", *map(str, folders[::-1])]
    assert main(bad) == 2 and "is the report of" in caplog.text
    # Without folders the benchmark runs here, with its defaults, one report per model.
    out3 = tmp_path / "cmp3"
    args = ["compare", str(tiny_model_path), "--logs", str(demo_log), "-q", "--no-closed-loop"]
    assert main([*args, "--latency-runs", "5", "--out", str(out3), "--robustness"]) == 0
    rob = json.loads((out3 / "robustness_tiny" / "robustness.json").read_text())
    assert len(rob["corruptions"]) == 11 and rob["intensities"] == [1, 2, 3, 4, 5]
    assert rob["closed_loop"] is None
