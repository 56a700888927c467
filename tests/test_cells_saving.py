"""Models with our cells survive saving: Keras reload (SavedModel, .keras) and bare TensorFlow."""

import numpy as np

from keras_models import LSTMCell, PeepholeLSTMCell, keras

STEPS, INPUT, UNITS = 5, 3, 4


def model_with_every_cell():
    """Masked input → RNN(LSTMCell) ‖ RNN(peephole) ‖ Bidirectional(classic peephole) → Dense."""
    inputs = keras.Input((STEPS, INPUT), name="x")
    masked = keras.layers.Masking(0.0)(inputs)
    branches = [
        keras.layers.RNN(LSTMCell(UNITS))(masked),
        keras.layers.RNN(PeepholeLSTMCell(UNITS, kernel_initializer="kaiming_normal"))(masked),
        keras.layers.Bidirectional(
            keras.layers.RNN(PeepholeLSTMCell(UNITS, variant="classic"))
        )(masked),
    ]
    outputs = keras.layers.Dense(2)(keras.layers.Concatenate()(branches))
    return keras.Model(inputs, outputs)


def sample_inputs():
    xs = np.random.default_rng(0).normal(size=(3, STEPS, INPUT)).astype(np.float32)
    xs[1, 3:] = 0.0  # padded tail, masked away
    return xs


def test_save_and_reload_with_keras_and_with_bare_tensorflow(tmp_path, fresh_python):
    model, xs = model_with_every_cell(), sample_inputs()
    expected = model.predict(xs, verbose=0)
    saved = tmp_path / "saved"
    model.save(str(saved), save_format="tf")
    np.save(tmp_path / "x.npy", xs)
    np.save(tmp_path / "expected.npy", expected)

    reloaded = keras.models.load_model(str(saved))
    cells = [type(layer.cell).__name__ for layer in reloaded.layers if hasattr(layer, "cell")]
    assert cells == ["LSTMCell", "PeepholeLSTMCell"]
    bidirectional = next(la for la in reloaded.layers if isinstance(la, keras.layers.Bidirectional))
    assert bidirectional.forward_layer.cell.variant == "classic"
    np.testing.assert_allclose(reloaded.predict(xs, verbose=0), expected, atol=1e-6)

    keras_file = tmp_path / "model.keras"
    model.save(str(keras_file))
    np.testing.assert_allclose(
        keras.models.load_model(str(keras_file)).predict(xs, verbose=0), expected, atol=1e-6
    )

    result = fresh_python(
        """
        import sys
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load("saved")
        out = loaded.signatures["serving_default"](x=tf.constant(np.load("x.npy")))
        (value,) = out.values()
        np.testing.assert_allclose(value.numpy(), np.load("expected.npy"), atol=1e-6)
        assert not any(m.split(".")[0] in ("keras_models", "trainers") for m in sys.modules)
        print("same outputs")
        """,
        cwd=tmp_path,
    )
    assert "same outputs" in result.stdout
