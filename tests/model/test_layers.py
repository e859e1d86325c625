"""The one layer walk and the questions asked of it: order, nesting, names, weights."""

import keras
import pytest

from visopt.model.layers import find_layer, find_penultimate_layer, output_layer, walk, weight_layers


def _transfer_model():
    """A base model nested after preprocessing, as in the Keras transfer-learning guide."""
    base_input = keras.Input((8, 8, 3), name="base_input")
    x = keras.layers.Conv2D(4, 3, name="conv")(base_input)
    base = keras.Model(base_input, keras.layers.Conv2D(4, 3, name="dense")(x), name="base")  # a clashing name
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="dense")(x), name="outer"), base


def test_walk_is_graph_order_with_nested_layers_in_place():
    model, base = _transfer_model()
    paths = [visit.path for visit in walk(model)]
    assert paths == [("image",), ("rescale",), ("base", "base_input"), ("base", "conv"), ("base", "dense"),
                     ("base",), ("pool",), ("dense",)]
    assert [v.depth for v in walk(model)] == [0, 0, 1, 1, 1, 0, 0, 0]
    assert [v.name for v in walk(model, include_root=True)][-1] == "outer"


def test_names_resolve_outermost_first_and_inner_layers_are_found():
    model, base = _transfer_model()
    assert find_layer(model, "dense") is model.layers[-1]
    assert find_layer(model, "conv") is base.get_layer("conv")
    with pytest.raises(ValueError, match="no layer named 'nope'.*'conv'"):
        find_layer(model, "nope")
    with pytest.raises(IndexError, match="layer index 9 is out of range"):
        find_layer(model, 9)


def test_questions_answered_by_the_walk():
    model, base = _transfer_model()
    assert find_penultimate_layer(model, "dense") is base.get_layer("dense")  # the inner 'dense', a feature map
    assert [layer.name for layer in weight_layers(model)] == ["conv", "dense", "dense"]
    assert weight_layers(model)[1] is base.get_layer("dense")
    assert output_layer(model) is model.layers[-1]
