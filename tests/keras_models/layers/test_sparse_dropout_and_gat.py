"""GAT's dropout as in the paper's code: on the transformed features, and on sparse inputs."""

from keras_models.backend import keras, tf

import numpy as np
import pytest
from spektral.layers import GATConv as UpstreamGATConv

from keras_models.layers.graph_conv import GATConv
from keras_models.layers.sparse_dropout import SparseInputDropout
from pipelines.graph.datasets import example_graph

HEADS, CHANNELS, RATE = 2, 3, 0.5


def _leaky_relu(z):
    return np.where(z > 0, z, 0.2 * z)


def _numpy_attention(x, a, layer):
    """α[h] ``(n, n)`` per head, from the layer's weights, over ``N(i) ∪ {i}``."""
    neighbourhood = (a + np.eye(len(a))) > 0
    alphas = []
    for head in range(HEADS):
        wx = x @ layer.kernel.numpy()[:, head, :]
        e = _leaky_relu((wx @ layer.attn_kernel_self.numpy()[:, head, 0])[:, None]
                        + (wx @ layer.attn_kernel_neighs.numpy()[:, head, 0])[None, :])
        e = np.where(neighbourhood, np.exp(e - e.max(axis=1, keepdims=True)), 0.0)
        alphas.append(e / e.sum(axis=1, keepdims=True))
    return alphas


class FixedMask(keras.layers.Layer):
    """A dropout whose mask is given: ``t · mask / (1 - rate)`` in training, ``t`` otherwise."""

    def __init__(self, mask):
        super().__init__()
        self.mask = tf.constant(mask)

    def call(self, t, training=None):
        return t * self.mask / (1 - RATE) if training else t


def _graph():
    a = example_graph().a.toarray().astype("float32")
    x = np.random.default_rng(3).normal(size=(6, 4)).astype("float32")
    return x, a


def _layer(**kwargs):
    seeded = keras.initializers.GlorotUniform(seed=7)
    return GATConv(CHANNELS, attn_heads=HEADS, kernel_initializer=seeded,
                   attn_kernel_initializer=seeded, bias_initializer="ones", **kwargs)


@pytest.mark.parametrize("sparse_adjacency", [False, True])
def test_features_dropout_drops_w_x_before_the_attention_weighted_sum(sparse_adjacency):
    """Training, attention dropout 0: x'_i = Σ_j α_ij · (mask ⊙ W x_j) / (1 - p) + b, in NumPy.

    α is computed from the features before their dropout (as PetarV-/GAT's ``attn_head``).
    """
    x, a = _graph()
    layer = _layer(dropout_rate=0.0, features_dropout_rate=RATE)
    a_in = tf.sparse.from_dense(a) if sparse_adjacency else tf.constant(a)
    layer([tf.constant(x), a_in])
    mask = (np.random.default_rng(4).random((6, HEADS, CHANNELS)) > RATE).astype("float32")
    layer.features_dropout = FixedMask(mask)

    trained = layer([tf.constant(x), a_in], training=True).numpy()
    alphas = _numpy_attention(x, a, layer)
    expected = np.concatenate([
        alphas[h] @ (x @ layer.kernel.numpy()[:, h, :] * mask[:, h, :] / (1 - RATE))
        for h in range(HEADS)
    ], axis=1) + 1.0
    np.testing.assert_allclose(trained, expected, rtol=1e-5, atol=1e-6)
    # The mask matters: without it the output is the plain attention-weighted sum.
    plain = np.concatenate([alphas[h] @ (x @ layer.kernel.numpy()[:, h, :])
                            for h in range(HEADS)], axis=1) + 1.0
    assert not np.allclose(trained, plain, atol=1e-3)
    np.testing.assert_allclose(layer([tf.constant(x), a_in], training=False).numpy(), plain,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sparse_adjacency", [False, True])
@pytest.mark.parametrize("sparse_features", [False, True])
def test_inference_equals_upstream_gatconv_with_the_same_weights(sparse_adjacency,
                                                                 sparse_features):
    x, a = _graph()
    x[x < 0] = 0.0  # half zeros, so a sparse x is a real sparse matrix
    ours = _layer(dropout_rate=0.6, features_dropout_rate=0.6, activation="elu")
    seeded = keras.initializers.GlorotUniform(seed=0)  # overwritten below; seeded: no warning
    upstream = UpstreamGATConv(CHANNELS, attn_heads=HEADS, dropout_rate=0.6, activation="elu",
                               kernel_initializer=seeded, attn_kernel_initializer=seeded)
    a_in = tf.sparse.from_dense(a) if sparse_adjacency else tf.constant(a)
    x_in = tf.sparse.from_dense(x) if sparse_features else tf.constant(x)
    ours([x_in, a_in])
    upstream([tf.constant(x), a_in])
    upstream.set_weights(ours.get_weights())
    expected = upstream([tf.constant(x), a_in], training=False).numpy()
    np.testing.assert_allclose(ours([x_in, a_in], training=False).numpy(), expected,
                               rtol=1e-5, atol=1e-6)
    # In training the two dropouts are live: the outputs differ from inference.
    assert not np.allclose(ours([x_in, a_in], training=True).numpy(), expected, atol=1e-3)


def test_attention_coefficients_ignore_the_features_dropout():
    """Dense adjacency, training: α returned equals NumPy's α from the undropped features."""
    x, a = _graph()
    layer = _layer(dropout_rate=0.0, features_dropout_rate=0.9, return_attn_coef=True)
    _, alpha = layer([tf.constant(x), tf.constant(a)], training=True)
    for head, expected in enumerate(_numpy_attention(x, a, layer)):
        np.testing.assert_allclose(alpha.numpy()[:, head], expected, atol=1e-6)


def test_sparse_input_dropout_drops_only_nonzeros_like_keras_dropout():
    rng = np.random.default_rng(5)
    x = (rng.random((200, 300)) < 0.1) * rng.random((200, 300)).astype("float32")
    x = x.astype("float32")
    layer = SparseInputDropout(RATE, seed=1)
    at_inference = layer(tf.constant(x), training=False)
    assert isinstance(at_inference, tf.SparseTensor)
    np.testing.assert_array_equal(tf.sparse.to_dense(at_inference).numpy(), x)
    dropped = tf.sparse.to_dense(layer(tf.constant(x), training=True)).numpy()
    nonzero = x != 0
    assert np.all(dropped[~nonzero] == 0)
    kept = dropped[nonzero] != 0
    np.testing.assert_allclose(dropped[nonzero][kept], x[nonzero][kept] / (1 - RATE), rtol=1e-6)
    assert 0.45 < kept.mean() < 0.55  # about 6000 nonzeros, each kept with probability 1/2


def test_configs_round_trip_with_the_new_options():
    for layer in (GATConv(2, attn_heads=3, features_dropout_rate=0.6), SparseInputDropout(0.6, 3)):
        config = keras.saving.serialize_keras_object(layer)
        assert config["registered_name"].startswith("seqgraph>")
        clone = keras.saving.deserialize_keras_object(config)
        assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    assert GATConv(2).get_config()["features_dropout_rate"] == 0.0  # upstream's layer by default


def test_attention_coefficients_of_a_gat_model_are_the_dense_layers_alpha_kept_sparse():
    """``gat.attention_coefficients`` (sparse, one CSR per head) against the layer's dense path
    with the same weights on the same inputs (the first layer sees ``x`` at inference)."""
    from keras_models.models.gat import attention_coefficients, build_gat

    graph = example_graph()
    model = build_gat(graph.n_node_features, 2, heads=HEADS, hidden=CHANNELS, seed=5)
    alpha = attention_coefficients(model, graph.x, graph.a)
    layer = model.get_layer("gat_1")
    dense = GATConv.from_config({**layer.get_config(), "return_attn_coef": True})
    x, a = tf.constant(graph.x.toarray()), tf.constant(graph.a.toarray())
    dense([x, a])
    dense.set_weights(layer.get_weights())
    _, expected = dense([x, a], training=False)
    assert len(alpha) == HEADS
    for head in range(HEADS):
        np.testing.assert_allclose(alpha[head].toarray(), expected.numpy()[:, head], atol=1e-6)
        np.testing.assert_allclose(alpha[head].sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("self_loops", [True, False])
def test_sparse_path_equals_upstream_in_value_and_gradient_with_isolated_and_unordered_nodes(
        self_loops):
    """The sparse path (sorted segments, self loops apart, the softmax's max under
    ``stop_gradient``) against spektral's layer with the same weights and no dropout: outputs
    and gradients of every weight, on a graph whose nodes 2 and 7 have no edge (one inside,
    one last) and whose adjacency is given out of row-major order."""
    a = np.zeros((8, 8), "float32")
    for i, j in [(0, 1), (0, 3), (1, 4), (3, 5), (4, 6), (5, 6), (1, 6)]:
        a[i, j] = a[j, i] = 1.0
    x = np.random.default_rng(6).normal(size=(8, 4)).astype("float32")
    dense = tf.sparse.from_dense(a)
    shuffled = np.random.default_rng(7).permutation(len(dense.values))
    unordered = tf.SparseTensor(tf.gather(dense.indices, shuffled),
                                tf.gather(dense.values, shuffled), dense.dense_shape)
    ours = _layer(dropout_rate=0.0, activation="elu", add_self_loops=self_loops)
    seeded = keras.initializers.GlorotUniform(seed=0)
    upstream = UpstreamGATConv(CHANNELS, attn_heads=HEADS, dropout_rate=0.0, activation="elu",
                               kernel_initializer=seeded, attn_kernel_initializer=seeded,
                               add_self_loops=self_loops)
    ours([tf.constant(x), dense])
    upstream([tf.constant(x), dense])
    upstream.set_weights(ours.get_weights())

    def value_and_gradients(layer, adjacency):
        with tf.GradientTape() as tape:
            out = layer([tf.constant(x), adjacency], training=True)
            loss = tf.reduce_sum(out * np.arange(out.shape[1], dtype="float32"))
        return out.numpy(), [g.numpy() for g in tape.gradient(loss, layer.trainable_weights)]

    expected, expected_grads = value_and_gradients(upstream, dense)
    for adjacency in (dense, unordered):
        out, grads = value_and_gradients(ours, adjacency)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
        for grad, expected_grad in zip(grads, expected_grads, strict=True):
            np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-6)
    # An isolated node attends to itself only (its output is its own W x + bias 1, through
    # ELU), or, without self loops, to nothing (ELU of the bias).
    wx = x @ ours.kernel.numpy().reshape(4, -1) if self_loops else np.zeros((8, 6), "float32")
    np.testing.assert_allclose(out[[2, 7]], np.where(wx[[2, 7]] + 1 > 0, wx[[2, 7]] + 1,
                                                     np.expm1(wx[[2, 7]] + 1)), rtol=1e-5)
