"""Importing Keras 1/2 ``.h5`` models (issue 18): files written here by hand, as Keras 1.2
and 2.x laid them out, and checked against the same network built directly in Keras 3."""

from __future__ import annotations

import codecs
import json
import marshal
from pathlib import Path

import cv2
import h5py
import keras
import numpy as np
import pytest
from keras import layers

import models
import models.bytecode
import models.legacy
from core.runs import ModelLoadError
from models.bytecode import BytecodeError, affine_map, read_code
from models.layers import ColourConvert
from models.legacy import LegacyImportError, Preprocess, import_model, legacy_hint, main

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
PEER = SHARED / "peers" / "naoki" / "model.h5"
LAKE = SHARED / "data" / "udacity" / "akbari_lake"
FRAMES = np.random.default_rng(0).integers(0, 256, (4, *models.INPUT_SHAPE)).astype("float32")
RNG = np.random.default_rng(1)


# ------------------------------------------------------------------ writing old files


def keras1_function(func) -> list:
    """Keras 1.2's ``func_dump``: raw_unicode_escape text of the marshalled code."""
    return [marshal.dumps(func.__code__).decode("raw_unicode_escape"), None, None]


def keras2_function(func) -> list:
    """Keras 2.1.2+'s ``func_dump``: base64 (with newlines) of the marshalled code."""
    return [codecs.encode(marshal.dumps(func.__code__), "base64").decode("ascii"), None, None]


def lambda_from(source: str):
    """A real lambda of this interpreter, compiled (never called) from ``source``."""
    return eval(compile(source, "model.py", "eval"))


def write_h5(path: Path, config: dict, weights: dict, *, version: str, backend=None) -> Path:
    """An .h5 as Keras 1.2 / 2.x ``save_model`` wrote it: ``model_config`` JSON and
    ``model_weights/<layer>`` groups listing ``weight_names`` (all layers, even weightless)."""
    entries = config["config"]
    entries = entries if isinstance(entries, list) else entries["layers"]
    names = [e.get("name") or e["config"]["name"] for e in entries]
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = version.encode() if version.startswith("2") else version
        text = json.dumps(config)
        f.attrs["model_config"] = text.encode() if version.startswith("2") else text
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [n.encode() for n in names]
        if backend:
            group.attrs["backend"] = backend.encode()
        for name in names:
            g = group.create_group(name)
            stored = weights.get(name, [])
            g.attrs["weight_names"] = [n.encode() for n, _ in stored]
            for weight_name, value in stored:
                g.create_dataset(weight_name, data=value)
    return path


def keras1_layer(class_name: str, name: str, **config) -> dict:
    return {"class_name": class_name, "config": {"name": name, "trainable": True, **config}}


def keras2_node(class_name: str, name: str, inbound: list[str], **config) -> dict:
    return {
        "name": name,
        "class_name": class_name,
        "config": {"name": name, "trainable": True, **config},
        "inbound_nodes": [[[n, 0, 0, {}] for n in inbound]] if inbound else [],
    }


def random_like(layer) -> list[np.ndarray]:
    """Weights for ``layer`` with varied outputs; BatchNorm variances are positive."""
    out = []
    for w in layer.weights:
        value = RNG.normal(0, 0.3, tuple(w.shape)).astype("float32")
        if "variance" in w.path:
            value = RNG.uniform(0.5, 2.0, tuple(w.shape)).astype("float32")
        out.append(value)
    layer.set_weights(out)
    return out


def small_net(idiom, version: str, tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Lambda(idiom) -> Flatten -> Dense(1) on 8x16 inputs: (file, kernel, bias)."""
    kernel = RNG.normal(0, 0.05, (8 * 16 * 3, 1)).astype("float32")
    bias = np.float32([0.1])
    dump = keras1_function if version == "1.2.1" else keras2_function
    first = {"function": dump(idiom), "function_type": "lambda", "arguments": {}}
    first.update(output_shape=None, output_shape_type="raw", batch_input_shape=[None, 8, 16, 3])
    if version == "1.2.1":
        layer_list = [
            keras1_layer("Lambda", "lambda_1", **first),
            keras1_layer("Flatten", "flatten_1"),
            keras1_layer("Dense", "dense_1", output_dim=1, activation="linear", bias=True),
        ]
        config = {"class_name": "Sequential", "config": layer_list}
        weights = {"dense_1": [("dense_1_W:0", kernel), ("dense_1_b:0", bias)]}
    else:
        layer_list = [
            keras1_layer("Lambda", "lambda_1", **first),
            keras1_layer("Flatten", "flatten_1", data_format="channels_last"),
            keras1_layer("Dense", "dense_1", units=1, activation="linear", use_bias=True),
        ]
        config = {"class_name": "Sequential", "config": {"name": "seq", "layers": layer_list}}
        weights = {"dense_1": [("dense_1/kernel:0", kernel), ("dense_1/bias:0", bias)]}
    path = write_h5(tmp_path / f"old-{version}.h5", config, weights, version=version)
    return path, kernel, bias


def resized(frames: np.ndarray, size=(8, 16)) -> np.ndarray:
    return np.asarray(keras.ops.image.resize(frames, size, antialias=False))


# ------------------------------------------------------------------------ the idioms

IDIOMS = [
    ("x / 255 - 0.5", lambda x: x / 255.0 - 0.5, 1 / 255, -0.5),
    ("x / 127.5 - 1", lambda x: x / 127.5 - 1.0, 1 / 127.5, -1.0),
    ("x / 255", lambda x: x / 255.0, 1 / 255, 0.0),
    ("(x - 128) / 128", lambda x: (x - 128.0) / 128.0, 1 / 128, -1.0),
]


@pytest.mark.parametrize("version", ["1.2.1", "2.2.4"])
@pytest.mark.parametrize(("text", "idiom", "scale", "offset"), IDIOMS, ids=[i[0] for i in IDIOMS])
def test_each_normalisation_idiom_becomes_rescaling(tmp_path, version, text, idiom, scale, offset):
    path, kernel, bias = small_net(idiom, version, tmp_path)
    model = import_model(path, Preprocess(resize=(8, 16)))
    rescale = model.get_layer("lambda_1")
    assert isinstance(rescale, layers.Rescaling)
    assert rescale.scale == pytest.approx(scale, rel=1e-12)
    assert rescale.offset == pytest.approx(offset, abs=1e-12)
    # By hand: the idiom applied in numpy to the resized frames, then the Dense layer.
    x = resized(FRAMES)
    expected = idiom(x.astype("float64")).reshape(len(x), -1) @ kernel + bias
    np.testing.assert_allclose(model.predict(FRAMES, verbose=0), expected, rtol=1e-5, atol=1e-5)


# Marshalled `lambda x: x/255.0 - 0.5` from other interpreters (pyenv's, compiled with
# filename "m.py"): Python 2.7, 3.6, 3.8, 3.10, 3.12 and 3.13 lay out code objects and
# bytecode differently, and this interpreter's marshal.loads cannot read most of them.
OTHER_PYTHONS = {
    "2.7": "6301000000010000000200000043000000730c0000007c000064010015640200185328030000004e67"
    "0000000000e06f4067000000000000e03f280000000028010000007401000000782800000000280000000073"
    "040000006d2e707974080000003c6c616d6264613e010000007400000000",
    "3.6": "e30100000000000000010000000200000043000000730c0000007c0064011b0064021800530029034e"
    "670000000000e06f4067000000000000e03fa9002901da017872010000007201000000fa046d2e7079da083c"
    "6c616d6264613e010000007300000000",
    "3.8": "e3010000000000000000000000010000000200000043000000730c0000007c0064011b006402180053"
    "0029034e670000000000e06f4067000000000000e03fa9002901da017872010000007201000000fa046d2e70"
    "79da083c6c616d6264613e01000000f300000000",
    "3.10": "e3010000000000000000000000010000000200000043000000730c0000007c0064011b00640218005"
    "30029034e670000000000e06f4067000000000000e03fa9002901da017872010000007201000000fa046d2e7"
    "079da083c6c616d6264613e0100000073020000000c00",
    "3.12": "e30100000000000000000000000200000003000000f31200000097007c0064017a0b000064027a0a00"
    "00530029034e670000000000e06f4067000000000000e03fa9002901da0178730100000020fa046d2e7079fa"
    "083c6c616d6264613e720500000001000000730e00000080008821884589279043892d8000f300000000",
    "3.13": "e30100000000000000000000000200000003000000f3120000009500550053012d0b000053022d0a00"
    "00240029034e670000000000e06f4067000000000000e03fa9002901da0178730100000020da046d2e7079da"
    "083c6c616d6264613e720500000001000000730c000000800088218845892790438a2df300000000",
}
# Python 3.5 (the course's, e.g. Keras 1.2.1 files) keeps 3.6's code-object layout but
# encodes instructions in 1 or 3 bytes: the same six instructions, hand-assembled.
OTHER_PYTHONS["3.5"] = (
    bytes.fromhex(OTHER_PYTHONS["3.6"])
    .replace(bytes.fromhex("7c0064011b00640218005300"), bytes.fromhex("7c00006401001b6402001853"))
    .hex()
)
# `lambda x: K.tf.image.resize_images(x, (66, 200))` from Python 3.6: not a scaling.
RESIZE_36 = (
    "e30100000000000000010000000400000043000000731000000074006a016a026a037c006403830253002904"
    "4ee942000000e9c80000002902720100000072020000002904da014b5a0274665a05696d6167655a0d726573"
    "697a655f696d616765732901da0178a9007205000000fa046d2e7079da083c6c616d6264613e010000007300"
    "000000"
)


@pytest.mark.parametrize("python", sorted(OTHER_PYTHONS))
def test_bytecode_of_other_pythons_is_read_without_marshal(python, monkeypatch):
    monkeypatch.setattr(marshal, "loads", None)  # any use would fail the test
    found = affine_map(read_code(bytes.fromhex(OTHER_PYTHONS[python])))
    assert (found.scale, found.offset) == (pytest.approx(1 / 255), pytest.approx(-0.5))
    assert "255.0" in found.listing and "0.5" in found.listing


def test_reader_agrees_with_this_interpreter():
    for func in (lambda x: x / 127.5 - 1.0, lambda x: 2 - x * 3.0, lambda x: (x + 1) * 0.5):
        info = read_code(marshal.dumps(func.__code__))
        assert info.consts == func.__code__.co_consts
        assert info.code == func.__code__.co_code
        assert info.names == func.__code__.co_names
    assert affine_map(read_code(marshal.dumps((lambda x: 2 - x * 3.0).__code__))).scale == -3.0


def test_code_that_is_not_a_scaling_is_refused_with_its_constants():
    info = read_code(bytes.fromhex(RESIZE_36))
    assert info.names == ("K", "tf", "image", "resize_images")
    with pytest.raises(BytecodeError, match=r"other than \+ - \* /"):
        affine_map(info)
    for source in ("lambda x: x * x", "lambda x: 1.0 / x", "lambda x, y: x / y", "lambda x: 0.5"):
        with pytest.raises(BytecodeError):
            affine_map(read_code(marshal.dumps(lambda_from(source).__code__)))
    with pytest.raises(BytecodeError, match="code object"):
        read_code(b"\xe3\x01\x00")  # truncated


# ------------------------------------------------------------------ the layer kinds


def test_keras1_sequential_with_every_layer_kind_matches_keras3(tmp_path):
    """Keras 1.2 names (Convolution2D subsample/border_mode/dim_ordering, output_dim, p,
    BatchNormalization running_std) against the same network built in Keras 3."""
    ref = keras.Sequential(
        [
            keras.Input(models.INPUT_SHAPE),
            layers.Cropping2D(((70, 60), (100, 100))),
            layers.Rescaling(1 / 255, -0.5),
            layers.Conv2D(4, (3, 3), strides=2, activation="elu"),
            layers.BatchNormalization(epsilon=1e-3),
            layers.Activation("relu"),
            layers.Conv2D(4, (3, 3), padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.ELU(alpha=0.7),
            layers.Dropout(0.5),
            layers.Flatten(),
            layers.Dense(8, activation="elu"),
            layers.LeakyReLU(negative_slope=0.1),
            layers.Dense(1),
        ]
    )
    w = {i: random_like(layer) for i, layer in enumerate(ref.layers)}
    conv = dict(dim_ordering="tf", init="glorot_uniform", bias=True, W_regularizer=None)
    layer_list = [
        keras1_layer(
            "Cropping2D",
            "cropping2d_1",
            cropping=[[70, 60], [100, 100]],
            dim_ordering="tf",
            batch_input_shape=[None, 160, 320, 3],
            input_dtype="float32",
        ),
        keras1_layer(
            "Lambda",
            "lambda_1",
            function=keras1_function(lambda x: x / 255.0 - 0.5),
            function_type="lambda",
            arguments={},
        ),
        keras1_layer(
            "Convolution2D",
            "convolution2d_1",
            nb_filter=4,
            nb_row=3,
            nb_col=3,
            subsample=[2, 2],
            border_mode="valid",
            activation="elu",
            **conv,
        ),
        keras1_layer(
            "BatchNormalization",
            "batchnormalization_1",
            epsilon=0.001,
            mode=0,
            axis=-1,
            momentum=0.99,
        ),
        keras1_layer("Activation", "activation_1", activation="relu"),
        keras1_layer(
            "Convolution2D",
            "convolution2d_2",
            nb_filter=4,
            nb_row=3,
            nb_col=3,
            subsample=[1, 1],
            border_mode="same",
            activation="relu",
            **conv,
        ),
        keras1_layer(
            "MaxPooling2D",
            "maxpooling2d_1",
            pool_size=[2, 2],
            strides=[2, 2],
            border_mode="valid",
            dim_ordering="tf",
        ),
        keras1_layer("ELU", "elu_1", alpha=0.7),
        keras1_layer("Dropout", "dropout_1", p=0.5),
        keras1_layer("Flatten", "flatten_1"),
        keras1_layer("Dense", "dense_1", output_dim=8, activation="elu", bias=True, input_dim=None),
        keras1_layer("LeakyReLU", "leakyrelu_1", alpha=0.1),
        keras1_layer("Dense", "dense_2", output_dim=1, activation="linear", bias=True),
    ]
    stored = {
        "convolution2d_1": [("convolution2d_1_W:0", w[2][0]), ("convolution2d_1_b:0", w[2][1])],
        "batchnormalization_1": [
            (f"batchnormalization_1_{n}:0", v)
            for n, v in zip(("gamma", "beta", "running_mean", "running_std"), w[3], strict=True)
        ],
        "convolution2d_2": [("convolution2d_2_W:0", w[5][0]), ("convolution2d_2_b:0", w[5][1])],
        "dense_1": [("dense_1_W:0", w[10][0]), ("dense_1_b:0", w[10][1])],
        "dense_2": [("dense_2_W:0", w[12][0]), ("dense_2_b:0", w[12][1])],
    }
    path = write_h5(
        tmp_path / "k1.h5",
        {"class_name": "Sequential", "config": layer_list},
        stored,
        version="1.2.1",
    )
    model = import_model(path)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Cropping2D", "Rescaling", "Conv2D", "BatchNormalization", "ELU", "LeakyReLU"} <= kinds
    np.testing.assert_allclose(
        model.predict(FRAMES, verbose=0), ref.predict(FRAMES, verbose=0), rtol=1e-5, atol=1e-5
    )
    assert np.ptp(ref.predict(FRAMES, verbose=0)) > 0.01  # the check compares varied outputs


def test_keras2_functional_with_branches_matches_keras3(tmp_path):
    """Keras 2 names (Conv2D kernel_size/strides/padding/data_format, units, rate,
    moving_variance, ReLU max_value) in a functional graph with two merges."""
    frame = keras.Input(models.INPUT_SHAPE)
    x = layers.Cropping2D(((60, 68), (90, 110)))(frame)
    x = layers.Rescaling(1 / 127.5, -1.0)(x)
    conv1 = layers.Conv2D(6, (5, 3), strides=(2, 1), padding="same", dilation_rate=1)
    x = conv1(x)
    bn = layers.BatchNormalization(epsilon=1e-3)
    x = layers.ReLU(max_value=6.0)(bn(x))
    a, b = layers.MaxPooling2D(2)(x), layers.AveragePooling2D(2, padding="same")(x)
    x = layers.Concatenate()([layers.Add()([a, b]), a])
    x = layers.SpatialDropout2D(0.2)(x)
    dense1, dense2 = layers.Dense(8, activation="relu"), layers.Dense(1)
    out = dense2(layers.Dropout(0.5)(dense1(layers.Flatten()(x))))
    ref = keras.Model(frame, out)
    w = {name: random_like(layer) for name, layer in [("c", conv1), ("bn", bn), ("d1", dense1)]}
    w["d2"] = random_like(dense2)

    fmt = {"data_format": "channels_last"}
    nodes = [
        {
            "name": "input_1",
            "class_name": "InputLayer",
            "config": {
                "batch_input_shape": [None, 160, 320, 3],
                "dtype": "float32",
                "sparse": False,
                "name": "input_1",
            },
            "inbound_nodes": [],
        },
        keras2_node(
            "Cropping2D", "cropping2d_1", ["input_1"], cropping=[[60, 68], [90, 110]], **fmt
        ),
        keras2_node(
            "Lambda",
            "lambda_1",
            ["cropping2d_1"],
            function_type="lambda",
            function=keras2_function(lambda x: x / 127.5 - 1.0),
            arguments={},
        ),
        keras2_node(
            "Conv2D",
            "conv2d_1",
            ["lambda_1"],
            filters=6,
            kernel_size=[5, 3],
            strides=[2, 1],
            padding="same",
            dilation_rate=[1, 1],
            activation="linear",
            use_bias=True,
            **fmt,
        ),
        keras2_node(
            "BatchNormalization",
            "batch_normalization_1",
            ["conv2d_1"],
            axis=-1,
            momentum=0.99,
            epsilon=0.001,
            center=True,
            scale=True,
        ),
        keras2_node(
            "ReLU",
            "re_lu_1",
            ["batch_normalization_1"],
            max_value=6.0,
            negative_slope=0.0,
            threshold=0.0,
        ),
        keras2_node(
            "MaxPooling2D",
            "max_pooling2d_1",
            ["re_lu_1"],
            pool_size=[2, 2],
            strides=[2, 2],
            padding="valid",
            **fmt,
        ),
        keras2_node(
            "AveragePooling2D",
            "average_pooling2d_1",
            ["re_lu_1"],
            pool_size=[2, 2],
            strides=[2, 2],
            padding="same",
            **fmt,
        ),
        keras2_node("Add", "add_1", ["max_pooling2d_1", "average_pooling2d_1"]),
        keras2_node("Concatenate", "concatenate_1", ["add_1", "max_pooling2d_1"], axis=-1),
        keras2_node("SpatialDropout2D", "spatial_dropout2d_1", ["concatenate_1"], rate=0.2, **fmt),
        keras2_node("Flatten", "flatten_1", ["spatial_dropout2d_1"], **fmt),
        keras2_node("Dense", "dense_1", ["flatten_1"], units=8, activation="relu", use_bias=True),
        keras2_node("Dropout", "dropout_1", ["dense_1"], rate=0.5),
        keras2_node("Dense", "dense_2", ["dropout_1"], units=1, activation="linear", use_bias=True),
    ]
    config = {
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": nodes,
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["dense_2", 0, 0]],
        },
    }
    bn_names = ("gamma", "beta", "moving_mean", "moving_variance")
    stored = {
        "conv2d_1": [("conv2d_1/kernel:0", w["c"][0]), ("conv2d_1/bias:0", w["c"][1])],
        "batch_normalization_1": [
            (f"batch_normalization_1/{n}:0", v) for n, v in zip(bn_names, w["bn"], strict=True)
        ],
        "dense_1": [("dense_1/kernel:0", w["d1"][0]), ("dense_1/bias:0", w["d1"][1])],
        "dense_2": [("dense_2/kernel:0", w["d2"][0]), ("dense_2/bias:0", w["d2"][1])],
    }
    path = write_h5(tmp_path / "k2.h5", config, stored, version="2.2.4", backend="tensorflow")
    model = import_model(path)
    expected = ref.predict(FRAMES, verbose=0)
    np.testing.assert_allclose(model.predict(FRAMES, verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert np.ptp(expected) > 0.01


def test_theano_kernels_are_flipped_and_channels_first_is_refused(tmp_path):
    kernel = RNG.normal(0, 1, (3, 3, 3, 2)).astype("float32")
    dense = RNG.normal(0, 0.1, (8 * 8 * 2, 1)).astype("float32")
    ref = keras.Sequential(
        [
            keras.Input(models.INPUT_SHAPE),
            layers.Cropping2D(((70, 80), (150, 160))),
            layers.Conv2D(2, 3, use_bias=False),
            layers.Flatten(),
            layers.Dense(1, use_bias=False),
        ]
    )
    # Theano convolved (flipping the kernel); Keras 3 cross-correlates.
    ref.layers[1].set_weights([kernel[::-1, ::-1]])
    ref.layers[3].set_weights([dense])
    fmt = {"data_format": "channels_last"}
    layer_list = [
        keras1_layer(
            "Cropping2D",
            "cropping2d_1",
            cropping=[[70, 80], [150, 160]],
            batch_input_shape=[None, 160, 320, 3],
            **fmt,
        ),
        keras1_layer(
            "Conv2D",
            "conv2d_1",
            filters=2,
            kernel_size=[3, 3],
            strides=[1, 1],
            padding="valid",
            activation="linear",
            use_bias=False,
            **fmt,
        ),
        keras1_layer("Flatten", "flatten_1", **fmt),
        keras1_layer("Dense", "dense_1", units=1, activation="linear", use_bias=False),
    ]
    config = {"class_name": "Sequential", "config": layer_list}
    stored = {"conv2d_1": [("conv2d_1/kernel:0", kernel)], "dense_1": [("dense_1/kernel:0", dense)]}
    path = write_h5(tmp_path / "th.h5", config, stored, version="2.0.8", backend="theano")
    np.testing.assert_allclose(
        import_model(path).predict(FRAMES, verbose=0), ref.predict(FRAMES, verbose=0), rtol=1e-5
    )
    layer_list[1]["config"]["data_format"] = "channels_first"
    path = write_h5(tmp_path / "cf.h5", config, stored, version="2.0.8")
    with pytest.raises(LegacyImportError, match="channels-first"):
        import_model(path)


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
    for module in (models.bytecode, models.legacy):
        assert not {"marshal", "pickle"} & set(vars(module))
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


def test_cli_writes_a_model_that_loads_safely_and_serves(tmp_path, capsys):
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
    err = capsys.readouterr().err.strip()
    assert "already exists; pass --overwrite" in err and "\n" not in err
    assert main([*args, "--overwrite"]) == 0
    capsys.readouterr()
    assert main([str(path), "--out", str(tmp_path / "x.keras")]) == 2
    err = capsys.readouterr().err.strip()
    assert "takes (8, 16, 3) inputs" in err and "--resize 8x16" in err and "\n" not in err
    assert not (tmp_path / "x.keras").exists()


def test_drive_py_names_the_import_command_for_a_legacy_file(tmp_path, caplog):
    from drive.cli import main as drive_main
    from drive.process import free_port

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
