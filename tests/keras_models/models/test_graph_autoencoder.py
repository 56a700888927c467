"""The graph auto-encoder's pieces against NumPy: Â from an edge list, the decoder, the losses,
the negative sampler, and the gated graph layer's equations (Li et al. 2016)."""

from keras_models.backend import keras, tf

import numpy as np
import pytest

from keras_models.models import ggnn
from keras_models.models.graph_autoencoder import (
    GraphAutoEncoder,
    all_pairs_loss,
    build_encoder,
    gcn_filter,
    gcn_filter_from_edges,
    kl_divergence,
    pair_logits,
    pattern_from_edges,
    sampled_non_edges,
)
from keras_models.utils.errors import UsageError
from keras_models.utils.graph_algebra import normalized_adjacency
from pipelines.graph.datasets import karate_graph
from pipelines.graph.edge_split import undirected_edges

KARATE = karate_graph()
EDGES = undirected_edges(KARATE.a)
RNG = np.random.default_rng(0)


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_adjacency_from_an_edge_list_matches_the_dense_algebra():
    expected = normalized_adjacency(KARATE.a).toarray()
    once = gcn_filter_from_edges(tf.constant(EDGES), 34)
    both = gcn_filter_from_edges(tf.constant(np.concatenate([EDGES, EDGES[:, ::-1]])), 34)
    for a_hat in (once, both, gcn_filter(KARATE.a)):
        np.testing.assert_allclose(tf.sparse.to_dense(a_hat).numpy(), expected, atol=1e-6)
    with_loop = tf.constant(np.concatenate([EDGES, [[3, 3]]]))
    pattern = tf.sparse.to_dense(pattern_from_edges(with_loop, 34)).numpy()
    np.testing.assert_array_equal(pattern, KARATE.a.toarray())
    np.testing.assert_array_equal(
        tf.sparse.to_dense(ggnn.preprocess_sparse(KARATE.a)).numpy(), KARATE.a.toarray()
    )


def test_decoder_kl_and_all_pairs_loss_against_numpy():
    z = RNG.normal(size=(5, 3)).astype("float32")
    pairs = np.array([[0, 1], [2, 4], [3, 3]])
    np.testing.assert_allclose(pair_logits(z, pairs).numpy(),
                               [z[0] @ z[1], z[2] @ z[4], z[3] @ z[3]], rtol=1e-5)
    mu, log_sigma = z, RNG.normal(size=(5, 3)).astype("float32") * 0.1
    kl = 0.5 * (mu**2 + np.exp(2 * log_sigma) - 1 - 2 * log_sigma).sum(axis=1).mean() / 5
    np.testing.assert_allclose(kl_divergence(mu, log_sigma).numpy(), kl, rtol=1e-5)
    # tkipf/gae: labels A + I, positives weighted (n² − E)/E, times n² / (2 (n² − E)).
    edges = np.array([[0, 1], [1, 2], [3, 4]])
    labels = np.eye(5)
    for u, v in edges:
        labels[u, v] = labels[v, u] = 1
    ones = labels.sum()
    p = _sigmoid(z @ z.T)
    weight = (25 - ones) / ones
    bce = -(weight * labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean()
    np.testing.assert_allclose(all_pairs_loss(tf.constant(z), tf.constant(edges)).numpy(),
                               25 / (2 * (25 - ones)) * bce, rtol=1e-5)
    # The paper's code counts the ones of A alone (6, not 11) for the weights; labels stay A + I.
    ones = labels.sum() - 5
    weight = (25 - ones) / ones
    bce = -(weight * labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean()
    np.testing.assert_allclose(
        all_pairs_loss(tf.constant(z), tf.constant(edges), count_loops=False).numpy(),
        25 / (2 * (25 - ones)) * bce, rtol=1e-5)


def test_sampled_non_edges_are_never_edges_or_loops():
    keys = tf.sort(tf.constant(
        np.concatenate([EDGES[:, 0] * 34 + EDGES[:, 1], EDGES[:, 1] * 34 + EDGES[:, 0]])
    ))
    pairs = sampled_non_edges(tf.random.Generator.from_seed(1), keys, 34, 2000).numpy()
    edge_set = {tuple(e) for e in EDGES} | {tuple(e[::-1]) for e in EDGES}
    assert 1500 < len(pairs) < 2000  # karate is 14 % dense: about 1 draw in 6 is dropped
    assert not any(tuple(p) in edge_set or p[0] == p[1] for p in pairs)


def test_an_unknown_reconstruction_is_refused():
    with pytest.raises(UsageError, match="unknown reconstruction 'full'"):
        GraphAutoEncoder(build_encoder(34), reconstruction="full")


def test_gated_graph_layer_follows_the_ggnn_equations():
    """``m = Σ_j W_l h_j`` over neighbours, ``h' = GRU(m, h)`` with Keras' gate layout."""
    x_in, a_in = keras.Input((34,)), keras.Input((None,), sparse=True)
    model = keras.Model([x_in, a_in], ggnn.gated_layers(x_in, a_in, 4, steps=2, seed=3))
    x = RNG.normal(size=(34, 34)).astype("float32")
    out = model([x, ggnn.preprocess_sparse(KARATE.a)]).numpy()
    w_in = model.get_layer("ggnn_input").kernel.numpy()
    layer = model.get_layer("ggnn")
    kernels = layer.kernel.numpy()
    w, u, b = (v.numpy() for v in layer.rnn.weights)  # kernel, recurrent kernel, (2, 3·units)
    a = KARATE.a.toarray()
    h = x @ w_in
    for step in range(2):
        m = a @ (h @ kernels[step])
        xz, xr, xh = np.split(m @ w + b[0], 3, axis=1)
        hz, hr, hh = np.split(h @ u + b[1], 3, axis=1)
        z, r = _sigmoid(xz + hz), _sigmoid(xr + hr)
        h = z * h + (1 - z) * np.tanh(xh + r * hh)
    np.testing.assert_allclose(out, h, atol=1e-5)
