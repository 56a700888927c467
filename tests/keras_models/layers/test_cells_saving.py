"""Models with our cells survive saving: Keras reload (SavedModel, .keras) and bare TensorFlow."""

import numpy as np

from keras_models import LSTMCell, PeepholeLSTMCell, keras

STEPS, INPUT, UNITS = 5, 3, 4


def model_with_every_cell():
    """Masked input → RNN([LSTMCell, peephole, classic peephole]) stacked → Dense."""
    inputs = keras.Input((STEPS, INPUT), name="x")
    masked = keras.layers.Masking(0.0)(inputs)
    cells = [
        LSTMCell(UNITS),
        PeepholeLSTMCell(UNITS, kernel_initializer="kaiming_normal"),
        PeepholeLSTMCell(UNITS, variant="classic"),
    ]
    outputs = keras.layers.Dense(2)(keras.layers.RNN(cells)(masked))
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
    cells = reloaded.get_layer(index=2).cell.cells
    assert [type(cell).__name__ for cell in cells] == ["LSTMCell", *["PeepholeLSTMCell"] * 2]
    assert [cells[1].variant, cells[2].variant] == ["matrix", "classic"]
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
