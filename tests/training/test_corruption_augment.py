"""Corruption augmentation (train.py --augment-corruptions): the benchmark's formulas in
keras.ops, deterministic with the seed, the same pixels on both pipelines, off by default."""

import json

import numpy as np
import pytest

from evaluation.robustness.corruptions import CORRUPTIONS, corrupt
from training.augment import NO_AUGMENT, PARAMS, AugmentConfig, apply, draw
from training.corruption_augment import (
    CORRUPTION_PARAMS,
    HELD_OUT_CORRUPTIONS,
    TRAIN_CORRUPTIONS,
    fog_bank,
)
from training.corruption_augment import corrupt as corrupt_ops
from training.device_pipeline import AugmentedTraining

ONLY_CORRUPT = AugmentConfig(
    flip_p=0.0, brightness_p=0.0, shadow_p=0.0, shift_p=0.0, recovery_p=0.0, corruption_p=1.0
)


@pytest.fixture(scope="module")
def road(tmp_path_factory):
    """Three frames of the procedural demo road (sky, hills, asphalt, lines)."""
    from core.recordings import decode_images, read_recording
    from sim.demo_road import write_demo_recording

    folder = tmp_path_factory.mktemp("demo") / "rec"
    write_demo_recording(folder, n_frames=30, seed=3)
    rec = read_recording(folder)
    return decode_images(list(rec.centre_paths[[2, 14, 27]]), progress=False)


def params_for(n, kind, intensity, seed=0):
    """Drawn parameters with every sample given corruption ``kind`` at ``intensity``."""
    p = draw(n, ONLY_CORRUPT, np.random.default_rng(seed))
    p["corruption"][:] = TRAIN_CORRUPTIONS.index(kind) + 1
    p["corruption_intensity"][:] = intensity
    return p


def ops_corrupt(frames, kind, intensity, seed=0):
    p = params_for(len(frames), kind, intensity, seed)
    return np.asarray(corrupt_ops(frames.astype(np.float32), p))


def test_trained_and_held_out_sets_split_the_benchmark():
    assert set(TRAIN_CORRUPTIONS) | set(HELD_OUT_CORRUPTIONS) == set(CORRUPTIONS)
    assert not set(TRAIN_CORRUPTIONS) & set(HELD_OUT_CORRUPTIONS)
    with pytest.raises(ValueError, match="held out.*Received: jpeg"):
        AugmentConfig(corruptions=("jpeg",))
    with pytest.raises(ValueError, match=r"corruption_p must be in \[0, 1\]"):
        AugmentConfig(corruption_p=1.5)


def test_off_by_default_draws_nothing_and_leaves_the_pixels(road):
    """The default draws exactly what it drew before the corruptions existed (values
    recorded from the previous commit's draw()), so every earlier figure is unchanged;
    with corruption_p 0, apply() ignores corruption parameters altogether."""
    assert AugmentConfig().corruption_p == 0.0
    rng = np.random.default_rng(7)
    p = draw(3, AugmentConfig(shift_p=0.5), rng)
    np.testing.assert_allclose(p["shift_px"], [-16, 0, 0])
    np.testing.assert_allclose(p["brightness"], [0.91129, 1.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(p["offset_m"], [-1.46462, 0.0, 0.57610], atol=1e-5)
    assert rng.random() == 0.8300477298017456
    assert all(not p[k].any() for k in CORRUPTION_PARAMS)
    # Drawn with the flag on, the parameters of the other transforms stay the same.
    q = draw(3, AugmentConfig(shift_p=0.5, corruption_p=0.5), np.random.default_rng(7))
    assert all(np.array_equal(p[k], q[k]) for k in PARAMS if k not in CORRUPTION_PARAMS)

    x = road.astype(np.float32)
    y = np.zeros(len(x), np.float32)
    zeros = np.zeros(len(x), np.float32)
    cfg = AugmentConfig(recovery_p=0.0)
    p = draw(len(x), cfg, np.random.default_rng(1))
    junk = {**p, "corruption": zeros + 1, "corruption_intensity": zeros + 5}
    a, _ = apply(x, x, y, p, zeros, cfg)
    b, _ = apply(x, x, y, junk, zeros, cfg)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c, _ = apply(x, x, y, junk, zeros, NO_AUGMENT)
    np.testing.assert_array_equal(np.asarray(c), x)


def test_deterministic_with_the_seed(road):
    x = np.repeat(road, 4, axis=0).astype(np.float32)
    y = np.zeros(len(x), np.float32)

    def run(seed):
        p = draw(len(x), ONLY_CORRUPT, np.random.default_rng(seed))
        xa, ya = apply(x, x, y, p, y, ONLY_CORRUPT)
        return p, np.asarray(xa), np.asarray(ya)

    (p1, a1, y1), (p2, a2, _), (_, a3, _) = run(3), run(3), run(4)
    assert all(np.array_equal(p1[k], p2[k]) for k in PARAMS)
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, a3)
    np.testing.assert_array_equal(y1, 0.0)  # labels untouched
    assert (p1["corruption"] > 0).all() and set(p1["corruption_intensity"]) <= {1, 2, 3, 4, 5}
    assert a1.min() >= 0 and a1.max() <= 255 and np.array_equal(a1, np.round(a1))


@pytest.mark.parametrize("kind", TRAIN_CORRUPTIONS)
def test_higher_intensity_changes_the_pixels_more(road, kind):
    for i, frame in enumerate(road):
        frames = np.repeat(frame[None], 6, axis=0)
        p = params_for(6, kind, 0, seed=i)
        p["corruption_intensity"][:] = np.arange(6)
        p["corruption"][0] = 0  # intensity 0: no corruption
        for k in ("noise_row", "noise_col", "fog_map", "fog_row"):
            p[k][:] = p[k][0]  # one random field at every intensity, as the benchmark
        out = np.asarray(corrupt_ops(frames.astype(np.float32), p))
        change = np.abs(out - frames.astype(np.float32)).mean(axis=(1, 2, 3))
        assert change[0] == 0.0
        assert (np.diff(change) > 0).all(), f"{kind} on frame {i}: {np.round(change, 2)}"


@pytest.mark.parametrize("kind", ["defocus_blur", "brightness_up", "brightness_down", "contrast"])
def test_deterministic_corruptions_match_the_benchmark(road, kind):
    """No random field: the keras.ops version gives the benchmark's uint8 frame, within
    one grey level (float rounding at .5 and a DFT inside cv2.filter2D; the brightness
    shifts of 0.1, 0.3 and 0.5 are 25.5, 76.5 and 127.5 grey levels, so the value
    channel lands on .5 and 0..1 against 0..255 arithmetic rounds it either way)."""
    for s in range(1, 6):
        got = ops_corrupt(road, kind, s)
        expected = np.stack([corrupt(f, kind, s) for f in road]).astype(np.float32)
        diff = np.abs(got - expected)
        assert diff.max() <= 1.0 and diff.mean() < 0.25, (kind, s, diff.max(), diff.mean())


def test_gaussian_noise_has_the_benchmarks_sigma():
    from core.corruption_formulas import SEVERITIES

    flat = np.full((2, 160, 320, 3), 128, np.uint8)
    for s, sigma in enumerate(SEVERITIES["gaussian_noise"][:3], start=1):
        diff = (ops_corrupt(flat, "gaussian_noise", s, seed=s) - 128.0) / 255.0
        assert diff.std() == pytest.approx(sigma, rel=0.03) and abs(diff.mean()) < 0.01
        assert not np.array_equal(diff[0], diff[1])  # each sample its own window


def test_fog_is_the_benchmarks_formula_on_a_bank_map(road):
    from core.corruption_formulas import SEVERITIES

    p = params_for(len(road), "fog", 4)
    got = np.asarray(corrupt_ops(road.astype(np.float32), p))
    bank = fog_bank()[..., 0]
    t = SEVERITIES["fog"][3][0]
    for i, frame in enumerate(road):
        k = min(int(p["fog_map"][i] * len(bank)), len(bank) - 1)
        top = min(int(p["fog_row"][i] * (bank.shape[1] - 160 + 1)), bank.shape[1] - 160)
        haze = bank[k, top : top + 160, :320, None]
        x = frame.astype(np.float32) / 255.0
        m = x.max()
        expected = np.clip(np.round((x + t * haze) * (m / (m + t)) * 255.0), 0, 255)
        assert np.abs(got[i] - expected).max() <= 1.0


def test_host_and_device_pipelines_give_the_same_corrupted_pixels(road):
    """Every trained corruption, frames fed or gathered on the device by index: the
    same output, and it is the model on apply()'s pixels."""
    import keras

    frames = np.concatenate([road, road[::-1]])  # 6 frames, one per corruption
    n = len(frames)
    p = draw(n, ONLY_CORRUPT, np.random.default_rng(5))
    p["corruption"][:] = np.arange(1, n + 1)
    p["corruption_intensity"][:] = [5, 3, 4, 2, 1, 5]
    label = np.linspace(-0.2, 0.2, n, dtype=np.float32)
    common = {"source_x": np.zeros(n, np.float32), "label": label, **p}
    idx = np.arange(n, dtype=np.int32)
    inp = keras.Input((160, 320, 3))
    h = keras.layers.AveragePooling2D(8)(keras.layers.Rescaling(1 / 255.0)(inp))
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(h)))
    host = AugmentedTraining(model, ONLY_CORRUPT)
    device = AugmentedTraining(model, ONLY_CORRUPT, frames)
    out_h = np.asarray(host({"source": frames, "centre": frames, **common}, training=True))
    out_d = np.asarray(device({"source": idx, "centre": idx, **common}, training=True))
    np.testing.assert_allclose(out_h, out_d, rtol=1e-6, atol=1e-6)
    x, _ = apply(frames, frames, label, p, common["source_x"], ONLY_CORRUPT)
    x = np.asarray(x)
    np.testing.assert_allclose(out_h[:, 0], np.asarray(model(x))[:, 0], rtol=1e-5, atol=1e-5)
    assert all(not np.array_equal(x[i], frames[i]) for i in range(n))


@pytest.fixture(scope="module")
def tiny_recording(tmp_path_factory):
    from sim.demo_road import write_demo_recording

    root = tmp_path_factory.mktemp("corrupt-train")
    write_demo_recording(root / "train", n_frames=48, seed=1)
    write_demo_recording(root / "val", n_frames=16, seed=2)
    return root


def test_the_flag_trains_and_is_recorded_in_config_json(tiny_recording, tmp_path):
    from train import main

    args = ["--data", str(tiny_recording / "train"), "--val-recording"]
    args += [str(tiny_recording / "val"), "--arch", "pilotnet", "--epochs", "1"]
    args += ["--batch-size", "16", "--pipeline", "host", "--quiet", "--out", str(tmp_path)]
    assert main([*args, "--augment-corruptions", "0.5"]) == 0
    (config,) = tmp_path.glob("*/config.json")
    augment = json.loads(config.read_text())["settings"]["augment"]
    assert augment["corruption_p"] == 0.5
    assert augment["corruptions"] == list(TRAIN_CORRUPTIONS)


@pytest.mark.parametrize(
    "extra,expected",
    [
        (["--augment-corruptions", "1.5"], ["--augment-corruptions", "in [0, 1]", "got 1.5"]),
        (["--augment-corruptions", "-0.1"], ["--augment-corruptions", "got -0.1"]),
        (["--augment-corruptions", "nan"], ["--augment-corruptions", "got nan"]),
        (["--augment-corruptions", "0.5", "--no-augment"], ["--no-augment"]),
    ],
)
def test_bad_values_are_refused_with_status_2(tmp_path, caplog, extra, expected):
    from train import main

    assert main(["--data", str(tmp_path / "none"), "--out", str(tmp_path), *extra]) == 2
    assert all(text in caplog.text for text in expected), caplog.text
    assert not list(tmp_path.glob("*/config.json"))
