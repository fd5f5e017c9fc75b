"""Exports of every architecture against Keras ``predict`` on real-looking frames.

Tolerances (steering units; the test models' output std is 0.3, see conftest):

- float32 TFLite and ONNX: max |diff| <= 1e-4 (the issue's bound; measured <= 3e-5).
- float16: max |diff| <= 0.02 and MAE <= 0.01 (measured up to ~0.008 / 0.003 here;
  on trained models 0.0034 / 0.00025, benchmarks/export_parity.md).
- int8, judged on 128 frames: MAE <= 0.35 x output std and correlation >= 0.95 with
  Keras (base, pilotnet, separable: measured 0.06-0.11 x std, correlation >= 0.99);
  the deep BatchNorm families (eff, eff-slim, mnv2) MAE <= 0.9 x std and correlation
  >= 0.4 (measured 0.55-0.68 x std, correlation 0.56-0.77). Random weights are the
  harsh case for int8, a deep BatchNorm/LeakyReLU chain most of all: every layer adds
  its rounding error (TFLite's quantisation debugger shows each at the ideal 0.29 x
  scale). Trained models measure 0.01 (base) to 0.16 (eff) x std on a held-out
  recording (benchmarks/export_parity.md); these bounds catch broken quantisation (a
  misread uint8 input, a clipped range, an output unrelated to the model's), not the
  degradation the benchmark reports. On 16 frames the old EffNet bound (correlation
  >= 0.3) passed an unrelated output 12% of the time; on 128 the correlation of an
  unrelated output has std 0.09, and test_int8_bounds_reject_an_unrelated_output
  checks that no bound passes one more often than 1 in 1,000.

Architectures come from the registry, so a new one is covered by itself.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from export_testkit import INT8_FRAMES, OUTPUT_STD

import models
from export import convert, synthetic_frames, to_tflite
from serving import load

FLOAT_TOL = 1e-4
FLOAT16_MAX, FLOAT16_MAE = 0.02, 0.01
#: int8 bounds per architecture: (MAE / Keras output std, minimum correlation).
INT8_BOUNDS = {"eff": (0.9, 0.4), "eff-slim": (0.9, 0.4), "mnv2": (0.9, 0.4)}
INT8_DEFAULT_BOUNDS = (0.35, 0.95)

ALL = sorted(models.ARCHITECTURES)
# The default run keeps under ~2.5 minutes on the 2-core CPU: every architecture is
# checked in float (the 1e-4 bound); quantised, EffNet (the one int8 hurts) in
# TFLite and PilotNet (the quickest) in both formats; the rest run with -m slow.
QUANTISED_FAST = {("eff", "tflite"), ("pilotnet", "tflite"), ("pilotnet", "onnx")}


def export_and_predict(tmp_path, model, fmt, frames, quantize=None, calibration=None):
    path = tmp_path / f"{model.name}{'.' + quantize if quantize else ''}.{fmt}"
    path.write_bytes(convert(model, fmt, quantize=quantize, calibration=calibration))
    return load(path).predict_batch(frames)[:, None]


def keras_predict(model, frames):
    return model.predict(frames.astype(np.float32), verbose=0)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
@pytest.mark.parametrize("arch", ALL)
def test_float_export_matches_keras(tmp_path, model_factory, frames, arch, fmt):
    model = model_factory(arch)
    expected = keras_predict(model, frames)
    assert expected.std() > 0.1  # the outputs really vary (conftest scales them to 0.3)
    got = export_and_predict(tmp_path, model, fmt, frames)
    assert got.shape == (len(frames), 1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=FLOAT_TOL)


def int8_within_bounds(got: np.ndarray, expected: np.ndarray, arch: str) -> bool:
    """The int8 acceptance rule: MAE against Keras' output std, and correlation."""
    mae_over_std, min_corr = INT8_BOUNDS.get(arch, INT8_DEFAULT_BOUNDS)
    got, expected = np.ravel(got), np.ravel(expected)
    mae = np.abs(got - expected).mean()
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant output: NaN fails
        corr = np.corrcoef(got, expected)[0, 1]
    return bool(mae <= mae_over_std * expected.std() and corr >= min_corr)


def _marks(arch, fmt):
    return [] if (arch, fmt) in QUANTISED_FAST else [pytest.mark.slow]


@pytest.mark.parametrize(
    ("arch", "fmt", "quantize"),
    [
        pytest.param(a, f, q, id=f"{a}-{f}-{q}", marks=_marks(a, f))
        for a in ALL
        for f in ("tflite", "onnx")
        for q in ("float16", "int8")
    ],
)
def test_quantised_export_within_tolerance(
    tmp_path, model_factory, frames, int8_frames, calibration_frames, arch, fmt, quantize
):
    model = model_factory(arch)
    if quantize == "int8":
        frames, calibration = int8_frames, calibration_frames(32)
    else:
        calibration = None
    expected = keras_predict(model, frames)
    got = export_and_predict(tmp_path, model, fmt, frames, quantize, calibration)
    diff = np.abs(got - expected)
    if quantize == "float16":
        assert diff.max() <= FLOAT16_MAX and diff.mean() <= FLOAT16_MAE, (diff.max(), diff.mean())
    else:
        corr = np.corrcoef(got[:, 0], expected[:, 0])[0, 1]
        assert int8_within_bounds(got, expected, arch), (diff.mean() / expected.std(), corr)


@pytest.mark.parametrize("arch", ALL)
def test_int8_bounds_reject_an_unrelated_output(arch):
    """An int8 export whose output has nothing to do with the model's (same spread,
    or constant) must fail the bound, not pass it by luck of the frames."""
    rng = np.random.default_rng(0)
    draws = 5000
    expected = rng.normal(0.0, OUTPUT_STD, (draws, INT8_FRAMES))
    unrelated = rng.normal(0.0, OUTPUT_STD, (draws, INT8_FRAMES))
    passed = sum(int8_within_bounds(g, e, arch) for g, e in zip(unrelated, expected, strict=True))
    assert passed / draws < 1e-3, f"{passed} of {draws} unrelated outputs passed"
    assert not int8_within_bounds(np.full(INT8_FRAMES, 0.1), expected[0], arch)


def test_int8_tflite_takes_raw_uint8_pixels(tmp_path, model_factory, frames):
    """Input uint8 with scale 1 and zero point 0: a decoded frame goes in unchanged."""
    from ai_edge_litert.interpreter import Interpreter

    model = model_factory("pilotnet")
    content = to_tflite(model, quantize="int8", calibration=synthetic_frames(8, seed=3).frames)
    detail = Interpreter(model_content=content).get_input_details()[0]
    assert np.dtype(detail["dtype"]) == np.uint8
    assert detail["quantization"] == (1.0, 0)
    path = tmp_path / "m.int8.tflite"
    path.write_bytes(content)
    runtime = load(path)
    np.testing.assert_array_equal(
        runtime.predict_batch(frames), runtime.predict_batch(frames.astype(float))
    )


def test_int8_tflite_float_input_variant_gives_same_outputs(tmp_path, model_factory, frames):
    """Measured choice: a uint8 input costs no accuracy against a float32 one."""
    model = model_factory("pilotnet")
    calibration = synthetic_frames(8, seed=3).frames
    outputs = []
    for kind in ("uint8", "float32"):
        path = tmp_path / f"m.{kind}.tflite"
        path.write_bytes(
            to_tflite(model, quantize="int8", calibration=calibration, int8_input=kind)
        )
        runtime = load(path)
        assert runtime.input_dtype == np.dtype(kind)
        outputs.append(runtime.predict_batch(frames))
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-6)


def test_onnx_int8_needs_only_the_declared_packages(
    tmp_path, model_factory, frames, calibration_frames, monkeypatch
):
    """sympy is not in requirements.txt (onnxruntime does not declare it either): ONNX
    int8 must not need it. Blocked here, so the machine's own sympy cannot hide it."""
    monkeypatch.setitem(sys.modules, "sympy", None)  # `import sympy` raises ImportError
    monkeypatch.delitem(sys.modules, "onnxruntime.tools.symbolic_shape_infer", raising=False)
    model = model_factory("pilotnet")
    got = export_and_predict(tmp_path, model, "onnx", frames, "int8", calibration_frames(8))
    assert got.shape == (len(frames), 1) and np.isfinite(got).all()
