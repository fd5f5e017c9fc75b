"""Every layer kind the importer knows (models.legacy.converters), Keras 1 and 2 names,
checked against the same network built directly in Keras 3."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers
from legacy_testkit import (
    FRAMES,
    RNG,
    keras1_function,
    keras1_layer,
    keras2_function,
    keras2_node,
    random_like,
    write_h5,
)

import models
from models.legacy import LegacyImportError, import_model


def _assert_predicts_as(model, ref) -> None:
    """``model`` (imported) predicts what ``ref`` (built in Keras 3) does, on outputs that vary."""
    expected = ref.predict(FRAMES, verbose=0)
    np.testing.assert_allclose(model.predict(FRAMES, verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert np.ptp(expected) > 0.01  # the check compares varied outputs


# ------------------------------------------------------------------ Keras 1.2, Sequential


def _keras1_reference() -> keras.Sequential:
    """Every layer kind of the Keras 1.2 file below, built directly in Keras 3."""
    return keras.Sequential(
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


def _keras1_layers() -> list[dict]:
    """The Sequential's layers as Keras 1.2 wrote them: Convolution2D subsample/
    border_mode/dim_ordering, output_dim, p, a Lambda for the scaling."""
    conv = dict(dim_ordering="tf", init="glorot_uniform", bias=True, W_regularizer=None)
    return [
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


def _keras1_weights(w: dict[int, list[np.ndarray]]) -> dict:
    """``w`` (the reference's weights by layer index) under Keras 1.2's names, with
    BatchNormalization's running_std."""
    return {
        "convolution2d_1": [("convolution2d_1_W:0", w[2][0]), ("convolution2d_1_b:0", w[2][1])],
        "batchnormalization_1": [
            (f"batchnormalization_1_{n}:0", v)
            for n, v in zip(("gamma", "beta", "running_mean", "running_std"), w[3], strict=True)
        ],
        "convolution2d_2": [("convolution2d_2_W:0", w[5][0]), ("convolution2d_2_b:0", w[5][1])],
        "dense_1": [("dense_1_W:0", w[10][0]), ("dense_1_b:0", w[10][1])],
        "dense_2": [("dense_2_W:0", w[12][0]), ("dense_2_b:0", w[12][1])],
    }


def test_keras1_sequential_with_every_layer_kind_matches_keras3(tmp_path):
    """Keras 1.2 names (Convolution2D subsample/border_mode/dim_ordering, output_dim, p,
    BatchNormalization running_std) against the same network built in Keras 3."""
    ref = _keras1_reference()
    w = {i: random_like(layer) for i, layer in enumerate(ref.layers)}
    config = {"class_name": "Sequential", "config": _keras1_layers()}
    path = write_h5(tmp_path / "k1.h5", config, _keras1_weights(w), version="1.2.1")
    model = import_model(path)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Cropping2D", "Rescaling", "Conv2D", "BatchNormalization", "ELU", "LeakyReLU"} <= kinds
    _assert_predicts_as(model, ref)


# ------------------------------------------------------------------ Keras 2, functional


def _keras2_reference() -> tuple[keras.Model, dict[str, list[np.ndarray]]]:
    """The functional graph with two merges, built in Keras 3, and its random weights
    (conv ``c``, BatchNorm ``bn``, dense ``d1`` and ``d2``)."""
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
    return ref, w


def _keras2_stem_nodes(fmt: dict) -> list[dict]:
    """Input to ReLU as Keras 2 wrote them: Conv2D kernel_size/strides/padding/
    data_format, BatchNormalization, ReLU max_value."""
    return [
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
    ]


def _keras2_head_nodes(fmt: dict) -> list[dict]:
    """Both pooling branches, their Add and Concatenate, then the dense head (units, rate)."""
    return [
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


def _keras2_weights(w: dict[str, list[np.ndarray]]) -> dict:
    """``w`` under Keras 2's names (BatchNormalization's moving_variance)."""
    bn_names = ("gamma", "beta", "moving_mean", "moving_variance")
    return {
        "conv2d_1": [("conv2d_1/kernel:0", w["c"][0]), ("conv2d_1/bias:0", w["c"][1])],
        "batch_normalization_1": [
            (f"batch_normalization_1/{n}:0", v) for n, v in zip(bn_names, w["bn"], strict=True)
        ],
        "dense_1": [("dense_1/kernel:0", w["d1"][0]), ("dense_1/bias:0", w["d1"][1])],
        "dense_2": [("dense_2/kernel:0", w["d2"][0]), ("dense_2/bias:0", w["d2"][1])],
    }


def test_keras2_functional_with_branches_matches_keras3(tmp_path):
    """Keras 2 names (Conv2D kernel_size/strides/padding/data_format, units, rate,
    moving_variance, ReLU max_value) in a functional graph with two merges."""
    ref, w = _keras2_reference()
    fmt = {"data_format": "channels_last"}
    nodes = _keras2_stem_nodes(fmt) + _keras2_head_nodes(fmt)
    config = {
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": nodes,
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["dense_2", 0, 0]],
        },
    }
    stored = _keras2_weights(w)
    path = write_h5(tmp_path / "k2.h5", config, stored, version="2.2.4", backend="tensorflow")
    model = import_model(path)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Rescaling", "ReLU", "MaxPooling2D", "AveragePooling2D", "Add", "Concatenate"} <= kinds
    _assert_predicts_as(model, ref)


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
