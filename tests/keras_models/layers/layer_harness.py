"""One contract for every custom layer: build, config round trip, symbolic and eager call, one
training step, and SavedModel reload with the same outputs.

A case gives ``make_layer()`` (a fresh layer), ``make_model(layer)`` (a small Keras model that
contains it, from symbolic inputs) and ``inputs`` (NumPy arrays or a ``tf.SparseTensor``, one per
model input). ``check_layer_contract`` checks the contract and returns the model. The config
round trip is checked by behaviour too: a twin model around ``from_config(get_config())`` with
the same weights must give the same outputs.
"""

import copy

from keras_models.backend import keras, tf

import numpy as np


def config_round_trip(layer):
    """``from_config(get_config())`` gives a layer of the same class and config; returns it."""
    config = layer.get_config()
    again = type(layer).from_config(copy.deepcopy(config))  # Keras' RNN pops from it
    assert type(again) is type(layer)
    changed = {k for k in {*config, *again.get_config()}
               if config.get(k) != again.get_config().get(k)}
    assert not changed, {k: (config.get(k), again.get_config().get(k)) for k in changed}
    return again


def _as_tensor(value):
    return value if isinstance(value, tf.SparseTensor) else tf.constant(value)


def check_layer_contract(make_layer, make_model, inputs, tmp_path, *, atol=1e-5):
    """Check the contract described in the module docstring; return the trained model."""
    layer = make_layer()
    model = make_model(layer)
    assert layer.built
    twin = make_model(config_round_trip(layer))  # the same settings compute the same function
    twin.set_weights(model.get_weights())

    tensors = [_as_tensor(v) for v in inputs]
    feed = tensors if len(tensors) > 1 else tensors[0]
    eager = model(feed, training=False).numpy()
    np.testing.assert_allclose(twin(feed, training=False).numpy(), eager, atol=atol)
    traced = tf.function(lambda x: model(x, training=False))(feed).numpy()
    np.testing.assert_allclose(traced, eager, atol=atol)
    assert np.isfinite(eager).all()

    before = [w.numpy().copy() for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    target = np.ones_like(eager)
    data = tf.data.Dataset.from_tensors((tuple(tensors) if len(tensors) > 1 else feed, target))
    loss = model.fit(data, epochs=1, verbose=0).history["loss"][0]
    assert np.isfinite(loss)
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights,
                                                             strict=True))

    expected = model(feed, training=False).numpy()
    model.save(str(tmp_path / "saved"), save_format="tf")
    reloaded = keras.models.load_model(str(tmp_path / "saved"))
    np.testing.assert_allclose(reloaded(feed, training=False).numpy(), expected, atol=atol)
    if len(tensors) == 1:  # a signature takes dense tensors only: the graph models' take two
        served = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
        (served_out,) = served(feed).values()
        np.testing.assert_allclose(served_out.numpy(), expected, atol=atol)
    return model
