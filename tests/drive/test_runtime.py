"""Loading models for serving (``serving.load``): every format behind one Predictor, failures
before listening."""

from __future__ import annotations

import codecs
import json
import marshal
import shutil
import warnings

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from drive_testkit import tiny_model

import models
from core.runs import ModelLoadError
from serving import runtime
from serving.runtime import (
    KerasPredictor,
    LiteRTPredictor,
    OnnxPredictor,
    load,
    probe_frames,
    to_tflite,
)

FRAMES = probe_frames(3, seed=7)


def reference(model) -> np.ndarray:
    return model.predict(FRAMES.astype("float32"), verbose=0).reshape(-1)


def test_auto_converts_keras_to_litert_with_parity(tiny_keras_path):
    p = load(tiny_keras_path, threads=1)
    assert isinstance(p, LiteRTPredictor)
    assert p.info["arch"] == "tiny" and p.info["params"] > 0
    assert p.info["parity_max_abs_diff"] <= runtime.PARITY_ATOL
    model = keras.models.load_model(tiny_keras_path, compile=False)
    np.testing.assert_allclose(p.predict_batch(FRAMES), reference(model), atol=1e-5)
    assert isinstance(p.predict(FRAMES[0]), float)
    with pytest.raises(ValueError, match="shape"):
        p.predict(FRAMES[0, :100])


def test_keras_runtime_is_a_compiled_call_matching_predict(tmp_path):
    model = tiny_model()
    path = tmp_path / "model.h5"
    model.save(path)
    p = load(path, "keras")
    assert isinstance(p, KerasPredictor) and p.name == "keras-tf.function"
    np.testing.assert_allclose(p.predict_batch(FRAMES), reference(model), atol=1e-5)


def test_run_folder_prefers_keras_and_reads_config(tmp_path, tiny_keras_path):
    run = tmp_path / "20250101_000000_tiny"
    run.mkdir()
    shutil.copy(tiny_keras_path, run / "model.keras")
    tiny_model().save(run / "model.h5")
    (run / "config.json").write_text(json.dumps({"arch": "tiny", "best_val_mse": 0.0123}))
    p = load(run, warm_up=False)
    assert p.info["source"].endswith("model.keras")
    assert p.info["best_val_mse"] == 0.0123 and p.info["config"]["arch"] == "tiny"
    (run / "model.keras").unlink()
    assert load(run, warm_up=False).info["source"].endswith("model.h5")


def test_tflite_file_is_served_as_it_is(tmp_path):
    model = tiny_model()
    path = tmp_path / "model.tflite"
    path.write_bytes(to_tflite(model))
    p = load(path)
    assert isinstance(p, LiteRTPredictor) and "warm_ms" in p.info
    np.testing.assert_allclose(p.predict_batch(FRAMES), reference(model), atol=1e-5)
    with pytest.raises(ModelLoadError, match="runtime"):
        load(path, "keras")


def test_onnx_file_is_served(tmp_path):
    onnx = pytest.importorskip("onnx")
    helper, TensorProto = onnx.helper, onnx.TensorProto

    # steering = mean pixel / 255: enough to check the plumbing and the input layout.
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["frame", "axes"], ["m"], keepdims=0),
            helper.make_node("Div", ["m", "scale"], ["d"]),
            helper.make_node("Unsqueeze", ["d", "one"], ["steering"]),
        ],
        "mean",
        [helper.make_tensor_value_info("frame", TensorProto.FLOAT, ["N", 160, 320, 3])],
        [helper.make_tensor_value_info("steering", TensorProto.FLOAT, ["N", 1])],
        [
            helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
            helper.make_tensor("scale", TensorProto.FLOAT, [], [255.0]),
            helper.make_tensor("one", TensorProto.INT64, [1], [1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    p = load(path, threads=1)
    assert isinstance(p, OnnxPredictor)
    assert p.predict(FRAMES[0]) == pytest.approx(FRAMES[0].mean() / 255, rel=1e-5)
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(ModelLoadError, match="not a loadable .onnx"):
        load(tmp_path / "bad.onnx")


def test_conversion_failure_falls_back_to_keras(tiny_keras_path, monkeypatch, caplog):
    def broken(model):
        raise RuntimeError("converter exploded")

    monkeypatch.setattr(runtime, "to_tflite", broken)
    p = load(tiny_keras_path, "auto", warm_up=False)
    assert isinstance(p, KerasPredictor)
    assert "converter exploded" in caplog.text and "compiled Keras call" in caplog.text
    with pytest.raises(ModelLoadError, match="LiteRT conversion failed"):
        load(tiny_keras_path, "tflite", warm_up=False)


def test_parity_failure_falls_back_to_keras(tiny_keras_path, monkeypatch, caplog):
    original = LiteRTPredictor._predict
    monkeypatch.setattr(LiteRTPredictor, "_predict", lambda self, f: original(self, f) + 0.1)
    p = load(tiny_keras_path, "auto", warm_up=False)
    assert isinstance(p, KerasPredictor)
    assert "differs from model.predict" in caplog.text


# ---------------------------------------------------------------------- bad models


def test_missing_and_unsupported(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load(tmp_path / "nope.h5")
    with pytest.raises(ModelLoadError, match="neither model.keras nor model.h5"):
        load(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="expected a .h5, .keras, .tflite or .onnx"):
        load(tmp_path / "model.pt")
    with pytest.raises(ModelLoadError, match="runtime must be one of"):
        load(tmp_path / "model.pt", "tensorrt")


@pytest.mark.parametrize("suffix", [".h5", ".keras", ".tflite"])
def test_corrupt_files(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"\x89HDF\r\n garbage" * 100)
    with pytest.raises(ModelLoadError):
        load(path)


@pytest.mark.parametrize(
    "build",
    [lambda: tiny_model(outputs=2), lambda: tiny_model(input_shape=(160, 160, 3))],
    ids=["two-outputs", "square-input"],
)
def test_wrong_shapes(tmp_path, build):
    path = tmp_path / "model.keras"
    build().save(path)
    with pytest.raises(ModelLoadError, match="expected a steering model"):
        load(path)
    tfl = tmp_path / "model.tflite"
    tfl.write_bytes(to_tflite(build()))
    with pytest.raises(ModelLoadError, match="expected one"):
        load(tfl)


def test_keras2_lambda_model_is_refused_without_running_its_code(tmp_path):
    """A Keras 2-era .h5 with a Lambda: a clear error, and the stored code never runs."""
    marker = tmp_path / "code-ran"
    fn = eval(f"lambda x: (open({str(marker)!r}, 'w').write('x'), x)[1]")  # noqa: S307
    code = codecs.encode(marshal.dumps(fn.__code__), "base64").decode("ascii")
    layers = [
        {
            "class_name": "Lambda",
            "config": {
                "name": "lambda",
                "batch_input_shape": [None, 160, 320, 3],
                "dtype": "float32",
                "function": [code, None, None],
                "function_type": "lambda",
                "module": "__main__",
                "output_shape": None,
                "output_shape_type": "raw",
                "arguments": {},
            },
        },
        {"class_name": "Flatten", "config": {"name": "flatten", "dtype": "float32"}},
    ]
    path = tmp_path / "udacity_era.h5"
    with h5py.File(path, "w") as h:
        h.attrs["keras_version"] = "2.4.0"
        h.attrs["backend"] = "tensorflow"
        h.attrs["model_config"] = json.dumps(
            {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}
        )
    with pytest.raises(ModelLoadError, match="Lambda"):
        load(path)
    assert not marker.exists()


# ---------------------------------------------------------------------- real architectures


def _varied_model(arch: str, frames: np.ndarray):
    """``arch`` with a steering layer scaled so its outputs spread like real steering
    (std 0.3): untrained, eff's output layer starts at zero and every frame gives the
    same answer, which any runtime returning a constant would match."""
    keras.utils.set_random_seed(0)
    model = models.build_model(arch)
    steering = model.get_layer("steering")
    kernel, bias = steering.get_weights()
    kernel = np.random.default_rng(0).normal(0.0, 0.05, kernel.shape).astype(np.float32)
    steering.set_weights([kernel, bias])
    out = model.predict(frames.astype("float32"), verbose=0)
    gain = 0.3 / max(float(out.std()), 1e-12)
    steering.set_weights([kernel * gain, (bias - out.mean()) * gain])
    return model


# eff in the default run (BatchNorm after in-graph resizing, keras-pitfalls item 1); the
# rest of the registry with -m slow, which CI runs. A new architecture is covered by itself.
@pytest.mark.parametrize(
    "arch",
    [
        pytest.param(a, marks=[] if a == "eff" else [pytest.mark.slow])
        for a in sorted(models.ARCHITECTURES)
    ],
)
def test_serving_paths_match_predict(arch, tmp_path):
    frames = probe_frames(6, seed=3)
    model = _varied_model(arch, frames)
    path = tmp_path / f"{arch}.keras"
    model.save(path)
    p = load(path, "auto", threads=1)
    assert isinstance(p, LiteRTPredictor), "conversion must succeed for the registered archs"
    want = model.predict(frames.astype("float32"), verbose=0).reshape(-1)
    assert want.std() > 0.1  # the check below can tell a wrong answer from a right one
    np.testing.assert_allclose(p.predict_batch(frames), want, atol=1e-4)
    keras_call = KerasPredictor(model)
    np.testing.assert_allclose(keras_call.predict_batch(frames), want, atol=1e-4)


@pytest.mark.parametrize("input_type", ["uint8", pytest.param("int8", marks=pytest.mark.slow)])
def test_quantised_tflite_inputs(tmp_path, input_type):
    """An int8 export: uint8 raw-pixel input (fed as it is) or int8 (scaled)."""
    model = tiny_model()
    calibration = probe_frames(2, seed=1).astype("float32")

    def representative():
        yield [np.zeros((1, 160, 320, 3), np.float32)]  # pin the input range to 0..255
        yield [np.full((1, 160, 320, 3), 255, np.float32)]
        for frame in calibration:
            yield [frame[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = getattr(tf, input_type)
    converter.inference_output_type = tf.float32
    path = tmp_path / "model.tflite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "statistics for quantized inputs"
        path.write_bytes(converter.convert())
    p = load(path)
    assert p._direct == (input_type == "uint8")
    # The plumbing, not the quantisation error: the same numbers as feeding the
    # interpreter by hand with the input's own scale and zero point.
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    scale, zero = inp["quantization"]
    want = []
    for frame in FRAMES:
        x = frame if input_type == "uint8" else np.rint(frame / scale + zero)
        it.set_tensor(inp["index"], np.clip(x, -128, 255).astype(inp["dtype"])[None])
        it.invoke()
        want.append(it.get_tensor(out["index"]).item())
    np.testing.assert_allclose(p.predict_batch(FRAMES), want, atol=1e-6)
