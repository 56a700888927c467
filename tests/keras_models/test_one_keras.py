"""One Keras: a tf.keras model mixing spektral's GCNConv with our LSTMCell trains and saves.

Node features arrive as a short sequence per node, an ``RNN(LSTMCell)`` summarises each node,
and ``GCNConv`` mixes neighbours over a dense adjacency. The same scenario runs in this process
and in a fresh one that imports TensorFlow before seqgraph.
"""

from pathlib import Path

import numpy as np

from keras_models import LSTMCell, keras, tf

NODES, STEPS, FEATURES, UNITS, CLASSES = 6, 4, 3, 8, 2


def ring_adjacency(gcn_conv):
    a = np.zeros((NODES, NODES), np.float32)
    for i in range(NODES):
        a[i, (i + 1) % NODES] = a[(i + 1) % NODES, i] = 1.0
    return gcn_conv.preprocess(a).astype(np.float32)


def train_and_save(folder):
    """Build, train three steps, save as .keras and reload; return (loss before, loss after)."""
    import tf_keras
    from spektral.layers import GCNConv  # spektral only after seqgraph chose the Keras

    assert tf.keras.layers.Layer is tf_keras.layers.Layer
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(NODES, STEPS, FEATURES)).astype(np.float32)
    a, y = ring_adjacency(GCNConv), np.arange(NODES) % CLASSES

    sequences = keras.Input((STEPS, FEATURES))
    adjacency = keras.Input((NODES,))
    nodes = keras.layers.RNN(LSTMCell(UNITS))(sequences)
    logits = GCNConv(CLASSES)([nodes, adjacency])
    model = keras.Model([sequences, adjacency], logits)
    model.compile(
        keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    before = model.evaluate([x, a], y, batch_size=NODES, verbose=0)
    for _ in range(3):
        model.train_on_batch([x, a], y)
    after = model.evaluate([x, a], y, batch_size=NODES, verbose=0)

    path = str(Path(folder) / "mixed.keras")
    model.save(path)
    reloaded = keras.models.load_model(path, custom_objects={"GCNConv": GCNConv})
    np.testing.assert_allclose(
        reloaded.predict([x, a], batch_size=NODES, verbose=0),
        model.predict([x, a], batch_size=NODES, verbose=0),
        atol=1e-6,
    )
    return before, after


def test_mixed_model_trains_and_saves_in_process(tmp_path):
    before, after = train_and_save(tmp_path)
    assert after < before


def test_mixed_model_when_tensorflow_is_imported_first(tmp_path, fresh_python):
    result = fresh_python(
        f"""
        import sys
        import tensorflow as tf
        import keras_models
        import tf_keras
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_one_keras import train_and_save
        assert tf.keras.layers.Layer is tf_keras.layers.Layer
        before, after = train_and_save(".")
        assert after < before, (before, after)
        print("trained", before, after)
        """,
        cwd=tmp_path,
    )
    assert "trained" in result.stdout
