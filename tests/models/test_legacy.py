"""Importing Keras 1/2 ``.h5`` models (issue 18): refusals, nothing run, the command, serving
and the real peer model. Files are written by hand (legacy_testkit.py); the Lambda
reader and the layer kinds have their own test files."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import cv2
import h5py
import keras
import numpy as np
import pytest
from keras import layers
from legacy_testkit import (
    FRAMES,
    LAKE,
    PEER,
    keras1_function,
    keras1_layer,
    keras2_function,
    lambda_from,
    resized,
    small_net,
    write_h5,
)

import models
from core.runs import ModelLoadError
from models.layers import ColourConvert
from models.legacy import LegacyImportError, Preprocess, import_model, legacy_hint
from models.legacy.cli import main

# ---------------------------------------------------- refusals and nothing executed


def resize_lambda_file(tmp_path: Path, source: str, version: str = "2.2.4") -> Path:
    """Lambda(source) on 160x320x3 -> Flatten -> Dense(1) on an 8x16 network input."""
    dump = keras2_function if version.startswith("2") else keras1_function
    first = dict(
        function=dump(lambda_from(source)),
        function_type="lambda",
        arguments={},
        batch_input_shape=[None, 160, 320, 3],
    )
    layer_list = [
        keras1_layer("Lambda", "lambda_1", **first),
        keras1_layer("Flatten", "flatten_1"),
        keras1_layer("Dense", "dense_1", units=1, activation="linear", use_bias=True),
    ]
    stored = {
        "dense_1": [
            ("dense_1/kernel:0", np.full((384, 1), 0.01, "float32")),
            ("dense_1/bias:0", np.zeros(1, "float32")),
        ]
    }
    config = {"class_name": "Sequential", "config": layer_list}
    return write_h5(tmp_path / "resize.h5", config, stored, version=version)


def test_unknown_lambda_is_refused_naming_it_and_what_to_pass(tmp_path):
    path = resize_lambda_file(tmp_path, "lambda x: K.tf.image.resize_images(x, (8, 16))")
    with pytest.raises(LegacyImportError) as err:
        import_model(path)
    message = str(err.value)
    for part in (
        "'lambda_1'",
        "(8, 16)",
        "resize_images",
        "--lambda lambda_1=resize:HxW",
        "nothing in it was run",
    ):
        assert part in message
    # Told what it does, the importer puts the project's Resize in its place.
    model = import_model(path, Preprocess(lambdas={"lambda_1": "resize:8x16"}))
    assert type(model.get_layer("lambda_1")).__name__ == "Resize"
    expected = resized(FRAMES).reshape(len(FRAMES), -1).sum(axis=1, keepdims=True) * 0.01
    np.testing.assert_allclose(model.predict(FRAMES, verbose=0), expected, rtol=1e-5)
    with pytest.raises(LegacyImportError, match="the Lambda layers of .* are \\['lambda_1'\\]"):
        import_model(path, Preprocess(lambdas={"lambda_9": "resize:8x16"}))


def test_nothing_stored_in_the_file_is_executed(tmp_path):
    marker = tmp_path / "ran.txt"
    source = f"lambda x: open({str(marker)!r}, 'w').write('ran') and x / 255.0"
    path = resize_lambda_file(tmp_path, source, version="1.2.1")
    # The importer never imports marshal or pickle (their loads would build and run code).
    importlib.import_module("models.legacy.cli")
    package = [m for n, m in sys.modules.items() if n.startswith("models.legacy")]
    assert len(package) >= 8
    for module in package:
        assert not {"marshal", "pickle"} & set(vars(module)), module.__name__
    with pytest.raises(LegacyImportError, match="names \\('open', 'write'\\)"):
        import_model(path)
    with pytest.raises(ModelLoadError, match="python -m models.legacy"):
        models.load_model(path)  # the loader of drive.py, evaluate.py and export.py
    assert not marker.exists()


# --------------------------------------------------- preprocessing, CLI and serving


@pytest.mark.parametrize(
    ("mode", "code"),
    [("yuv", cv2.COLOR_RGB2YUV), ("yuv-opencv31", cv2.COLOR_BGR2YUV), ("bgr", cv2.COLOR_RGB2BGR)],
)
def test_colour_conversion_matches_opencv(mode, code):
    rgb = np.random.default_rng(2).integers(0, 256, (1, 40, 60, 3), dtype=np.uint8)
    got = np.asarray(ColourConvert(mode)(rgb.astype("float32")))[0]
    # OpenCV rounds its uint8 result in fixed point; the layer does not round.
    np.testing.assert_allclose(got, cv2.cvtColor(rgb[0], code), atol=1.0)
    if mode == "yuv-opencv31":  # OpenCV 3.1's RGB2YUV had red and blue exchanged
        swapped = np.asarray(ColourConvert("yuv")(rgb[..., ::-1].astype("float32")))
        np.testing.assert_allclose(got, swapped[0], atol=1e-4)


def error_line(caplog) -> str:
    """The one error line of the last failed command (core.cli.error_exit)."""
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors and "\n" not in errors[-1], errors
    caplog.clear()
    return errors[-1]


def test_cli_writes_a_model_that_loads_safely_and_serves(tmp_path, capsys, caplog):
    from serving import load

    path, _, _ = small_net(lambda x: x / 127.5 - 1.0, "1.2.1", tmp_path)
    out = tmp_path / "sub" / "imported.keras"
    args = [str(path), "--out", str(out), "--crop", "60", "25", "--resize", "8x16"]
    assert main([*args, "--colour", "yuv-opencv31"]) == 0
    assert f"python drive.py {out}" in capsys.readouterr().out
    direct = import_model(path, Preprocess((60, 25), (8, 16), colour="yuv-opencv31"))
    loaded = models.load_model(out)  # safe mode, input contract
    np.testing.assert_allclose(
        loaded.predict(FRAMES, verbose=0), direct.predict(FRAMES, verbose=0), atol=1e-6
    )
    predictor = load(out, threads=1)  # drive.py's path: LiteRT, parity-checked
    assert predictor.name == "litert" and predictor.info["parity_max_abs_diff"] < 1e-4

    assert main([*args]) == 2  # exists, no --overwrite
    assert "already exists; pass --overwrite" in error_line(caplog)
    assert main([*args, "--overwrite"]) == 0
    capsys.readouterr()
    assert main([str(path), "--out", str(tmp_path / "x.keras")]) == 2
    err = error_line(caplog)
    assert "takes (8, 16, 3) inputs" in err and "--resize 8x16" in err
    assert not (tmp_path / "x.keras").exists()


def test_drive_py_names_the_import_command_for_a_legacy_file(tmp_path, caplog):
    from drive.cli import main as drive_main
    from tools.process import free_port

    path, _, _ = small_net(lambda x: x / 255.0 - 0.5, "2.2.4", tmp_path)
    assert drive_main([str(path), "--port", str(free_port())]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert "saved by Keras 2.2.4" in errors[0] and "Lambda layer lambda_1" in errors[0]
    assert f"python -m models.legacy {path} --out old-2.2.4.keras" in errors[0]
    assert "listening" not in caplog.text


def test_keras3_h5_files_are_not_legacy(tmp_path):
    model = keras.Sequential([keras.Input((2,)), layers.Dense(1)])
    model.save(tmp_path / "new.h5")
    assert legacy_hint(tmp_path / "new.h5") is None
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    assert legacy_hint(tmp_path / "junk.h5") is None


# ------------------------------------------------------------------ the real peer


def test_peer_model_matches_its_own_pipeline_on_real_frames():
    """../shared/peers/naoki: Keras 1.2.1, Python 3.5 Lambda, preprocessing in its drive.py
    (crop 60/25, cv2.resize to 200x66 bilinear, OpenCV 3.1's RGB2YUV)."""
    if not PEER.is_file() or not LAKE.is_dir():
        pytest.skip(f"the peer model or the lake recording is absent ({PEER}, {LAKE}; ../shared)")
    from export.frames import recording_frames

    frames = recording_frames([LAKE], 200).frames
    model = import_model(PEER, Preprocess((60, 25), (66, 200), colour="yuv-opencv31"))
    got = model.predict(frames.astype("float32"), verbose=0)[:, 0]

    # By hand: its drive.py's steps on uint8 frames, then its network with the weights
    # set directly from the file.
    pre = np.stack(
        [
            cv2.cvtColor(
                cv2.resize(f[60:-25], (200, 66), interpolation=cv2.INTER_LINEAR),
                cv2.COLOR_BGR2YUV,
            )
            for f in frames
        ]
    ).astype("float32")
    x = inp = keras.Input((66, 200, 3))
    x = layers.Rescaling(1 / 127.5, -1.0)(x)
    named = []
    for i, (filters, k, s) in enumerate(
        [(24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (64, 3, 1)], start=1
    ):
        named.append((f"convolution2d_{i}", layers.Conv2D(filters, k, strides=s, activation="elu")))
        x = named[-1][1](x)
    x = layers.Flatten()(x)
    for i, (units, act) in enumerate([(100, "elu"), (50, "elu"), (10, "elu"), (1, None)], 1):
        named.append((f"dense_{i}", layers.Dense(units, activation=act)))
        x = named[-1][1](x)
    reference = keras.Model(inp, x)
    with h5py.File(PEER, "r") as f:
        for name, layer in named:
            g = f["model_weights"][name]
            layer.set_weights([np.asarray(g[n]) for n in g.attrs["weight_names"]])
    want = reference.predict(pre, verbose=0)[:, 0]

    diff = np.abs(got - want)
    corr = float(np.corrcoef(got, want)[0, 1])
    print(
        f"peer parity on {len(frames)} lake frames: max |diff| {diff.max():.4f}, "
        f"mean {diff.mean():.4f}, correlation {corr:.5f}"
    )
    assert diff.max() < 0.05 and corr > 0.99
