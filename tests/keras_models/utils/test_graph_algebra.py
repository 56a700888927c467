"""Graph algebra (Ã, Â, propagation depth) and the spektral layers against NumPy references."""

from keras_models.backend import keras, tf

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from spektral.utils import gcn_filter

from keras_models.layers.graph_conv import GATConv, GCNConv
from keras_models.utils.graph_algebra import (
    UNREACHABLE,
    depths_from,
    normalized_adjacency,
    propagation_depth,
    propagation_depths,
    receptive_field,
    with_self_loops,
)
from pipelines.graph.datasets import example_graph, karate_graph

# The assignment's graph A..F with edges A-B, A-E, A-F, B-D, C-D, D-F, worked by hand.
A_TILDE_BY_HAND = np.array([
    #A  B  C  D  E  F
    [1, 1, 0, 0, 1, 1],  # A
    [1, 1, 0, 1, 0, 0],  # B
    [0, 0, 1, 1, 0, 0],  # C
    [0, 1, 1, 1, 0, 1],  # D
    [1, 0, 0, 0, 1, 0],  # E
    [1, 0, 0, 1, 0, 1],  # F
])


def test_a_tilde_of_the_example_graph_is_the_hand_worked_matrix():
    a_tilde = with_self_loops(example_graph().a)
    assert sp.isspmatrix_csr(a_tilde)  # sparse in, sparse out
    np.testing.assert_array_equal(a_tilde.toarray(), A_TILDE_BY_HAND)
    np.testing.assert_array_equal(with_self_loops(example_graph().a.toarray()), A_TILDE_BY_HAND)


def test_c_reaches_e_after_four_layers():
    names = example_graph().node_names
    a = example_graph().a
    assert propagation_depth(a, names.index("C"), names.index("E")) == 4
    # (Ã^k)_EC is zero for k < 4 and positive at k = 4: the definition itself.
    powers = [np.linalg.matrix_power(A_TILDE_BY_HAND, k)[4, 2] for k in range(1, 5)]
    assert powers[:3] == [0, 0, 0] and powers[3] > 0


@pytest.mark.parametrize("graph", ["example", "karate", "disconnected"])
def test_depth_matrix_is_breadth_first_search(graph):
    if graph == "disconnected":
        g = nx.disjoint_union(nx.path_graph(5), nx.cycle_graph(4))
        a = nx.to_scipy_sparse_array(g, weight=None)
    else:
        a = (example_graph() if graph == "example" else karate_graph()).a
        g = nx.from_scipy_sparse_array(a)
    depth = propagation_depths(a)
    lengths = dict(nx.all_pairs_shortest_path_length(g))
    for t in g.nodes:
        for s in g.nodes:
            assert depth[t, s] == lengths[s].get(t, UNREACHABLE)
    for s in g.nodes:  # one source by breadth-first search: the same column
        np.testing.assert_array_equal(depths_from(a, s), depth[:, s])
    if graph == "disconnected":
        assert propagation_depth(a, 0, 7) is None


def test_a_hat_matches_numpy_and_spektral_gcn_filter():
    a = karate_graph().a
    a_tilde = a.toarray() + np.eye(34)
    d = a_tilde.sum(axis=1)
    expected = np.diag(d ** -0.5) @ a_tilde @ np.diag(d ** -0.5)
    a_hat = normalized_adjacency(a)
    assert sp.isspmatrix_csr(a_hat) and a_hat.nnz == 2 * 78 + 34
    np.testing.assert_allclose(a_hat.toarray(), expected, rtol=1e-12)
    np.testing.assert_allclose(normalized_adjacency(a.toarray()), expected, rtol=1e-12)
    np.testing.assert_allclose(a_hat.toarray(), gcn_filter(a).toarray(), rtol=1e-6)


def test_a_hat_in_the_graph_is_the_scipy_one_from_an_edge_list_with_repeats_and_loops():
    """``undirected_adjacency`` then ``gcn.preprocess_tf`` (serving, sampled batches) equals
    ``normalized_adjacency``, with a node that has no edges."""
    from keras_models.models import gcn
    from keras_models.utils.sparse_tensors import undirected_adjacency

    a = karate_graph().a
    rows, cols = sp.triu(a).nonzero()
    edges = np.concatenate([np.stack([rows, cols], 1), np.stack([cols[:9], rows[:9]], 1),
                            [[3, 3], [5, 5]]])  # 9 edges twice (both ways) and two self loops
    adjacency = undirected_adjacency(tf.constant(edges), 35)  # node 34 has no edge
    np.testing.assert_array_equal(tf.sparse.to_dense(adjacency).numpy()[:34, :34], a.toarray())
    a_hat = tf.sparse.to_dense(tf.sparse.reorder(gcn.preprocess_tf(adjacency))).numpy()
    expected = normalized_adjacency(sp.block_diag([a, sp.csr_matrix((1, 1))])).toarray()
    np.testing.assert_allclose(a_hat, expected, rtol=1e-6)
    assert a_hat[34, 34] == 1.0
    with pytest.raises(tf.errors.InvalidArgumentError, match="edges name a node >= n_nodes"):
        undirected_adjacency(tf.constant([[0, 35]]), 35)


def test_gcn_conv_forward_is_relu_of_a_hat_h_w():
    graph = karate_graph()
    a_hat = normalized_adjacency(graph.a).toarray().astype("float32")
    h = np.random.default_rng(0).normal(size=(34, 5)).astype("float32")
    layer = GCNConv(3, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(1))
    out = layer([tf.constant(h), tf.sparse.from_dense(a_hat)]).numpy()
    w, b = layer.get_weights()
    np.testing.assert_allclose(out, np.maximum(a_hat @ h @ w + b, 0), rtol=1e-5, atol=1e-6)


def _leaky_relu(z):
    return np.where(z > 0, z, 0.2 * z)


def test_gat_attention_is_softmax_over_neighbours_and_self():
    graph = example_graph()
    a = graph.a.toarray().astype("float32")
    x = np.random.default_rng(1).normal(size=(6, 4)).astype("float32")
    seeded = keras.initializers.GlorotUniform(seed=2)
    layer = GATConv(3, attn_heads=2, return_attn_coef=True, kernel_initializer=seeded,
                    attn_kernel_initializer=seeded)
    _, alpha = layer([tf.constant(x), tf.constant(a)], training=False)
    alpha = alpha.numpy()  # (nodes, heads, nodes)
    neighbourhood = (a + np.eye(6)) > 0
    np.testing.assert_allclose(alpha.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(alpha[:, 0][~neighbourhood] == 0) and np.all(alpha[:, 1][~neighbourhood] == 0)
    # NumPy reference: α_ij = softmax_j(LeakyReLU(a_s·Wx_i + a_n·Wx_j)) over j ∈ N(i) ∪ {i}.
    w = layer.kernel.numpy()
    for head in range(2):
        wx = x @ w[:, head, :]
        e = _leaky_relu((wx @ layer.attn_kernel_self.numpy()[:, head, 0])[:, None]
                        + (wx @ layer.attn_kernel_neighs.numpy()[:, head, 0])[None, :])
        e = np.where(neighbourhood, np.exp(e - e.max(axis=1, keepdims=True)), 0.0)
        np.testing.assert_allclose(alpha[:, head], e / e.sum(axis=1, keepdims=True), atol=1e-6)


def test_gat_attention_kernels_start_different():
    """spektral draws both attention kernels from one (stateless) initialiser: equal at start."""
    seeded = keras.initializers.GlorotUniform(seed=5)
    layer = GATConv(4, attn_heads=2, attn_kernel_initializer=seeded)
    layer.build([(None, 3), (None, None)])
    assert not np.allclose(layer.attn_kernel_self.numpy(), layer.attn_kernel_neighs.numpy())


def test_layers_config_round_trip():
    for layer in (GCNConv(4, activation="relu"), GATConv(2, attn_heads=3, add_self_loops=False)):
        config = keras.saving.serialize_keras_object(layer)
        assert config["registered_name"].startswith("seqgraph>")
        clone = keras.saving.deserialize_keras_object(config)
        assert type(clone) is type(layer) and clone.get_config() == layer.get_config()


def test_sparse_and_dense_adjacency_give_the_same_gcn_output():
    a_hat = normalized_adjacency(example_graph().a).astype("float32")
    x = np.eye(6, dtype="float32")
    layer = GCNConv(2, kernel_initializer=keras.initializers.GlorotUniform(seed=4))
    dense = layer([tf.constant(x), tf.constant(a_hat.toarray())]).numpy()
    sparse = layer([tf.constant(x), tf.sparse.from_dense(a_hat.toarray())]).numpy()
    np.testing.assert_allclose(dense, sparse, rtol=1e-6, atol=1e-7)


def test_gcn_has_no_biases_so_featureless_nodes_get_uniform_probabilities():
    """As in tkipf/gcn: no bias can push a hidden ReLU below zero on every node at once."""
    from keras_models.models.gcn import build_gcn

    model = build_gcn(5, 3, seed=0)
    assert [w.name.split("/")[-1].split(":")[0] for w in model.trainable_weights] == [
        "kernel", "kernel"
    ]
    a = tf.sparse.from_dense(tf.eye(4))
    probabilities = model([tf.sparse.from_dense(tf.zeros((4, 5))), a], training=False).numpy()
    np.testing.assert_allclose(probabilities, np.full((4, 3), 1 / 3), rtol=1e-6)


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("hops", [0, 1, 2, 3])
def test_receptive_field_is_every_node_within_that_many_layers(directed, hops):
    """Reference: ``propagation_depths`` (``(Ã^k)_ts > 0`` grown layer by layer): ``s`` is in the
    field of ``T`` iff ``0 <= depth[t, s] <= hops`` for some ``t`` in ``T``."""
    rng = np.random.default_rng(hops)
    a = sp.random(40, 40, density=0.04, random_state=hops, format="csr")
    a = a if directed else a + a.T
    nodes = rng.choice(40, size=3, replace=False)
    depth = propagation_depths(a)[nodes]
    expected = np.flatnonzero(((depth >= 0) & (depth <= hops)).any(axis=0))
    field = receptive_field(a, nodes, hops)
    np.testing.assert_array_equal(field, expected)
    assert 3 <= len(field) < 40
