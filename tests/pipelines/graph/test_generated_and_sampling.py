"""The generated stochastic block model and the sampled-neighbourhood mini-batches."""

from keras_models.backend import tf

import numpy as np
import pytest
import scipy.sparse as sp

from keras_models.utils.errors import UsageError
from pipelines.graph.datasets import load_graph, make_graph
from pipelines.graph.generated import sbm_graph
from pipelines.graph.sampling import sampled_batches


def test_sbm_graph_has_the_documented_structure_and_is_reproducible():
    g = sbm_graph(3000)
    a, labels = g.a, g.y.argmax(axis=1)
    assert sp.isspmatrix_csr(a) and (a != a.T).nnz == 0 and a.diagonal().sum() == 0
    assert set(a.data) == {1.0} and 9.5 < a.nnz / 3000 <= 10.0  # ~10 edges per node
    rows, cols = a.nonzero()
    same_class = np.mean(labels[rows] == labels[cols])
    assert abs(same_class - (0.6 + 0.4 / 5)) < 0.02  # homophily + chance of the random end
    x = g.x.toarray()
    np.testing.assert_allclose(x.sum(axis=1), 1.0, rtol=1e-5)
    own_block = x.reshape(3000, 5, 100).sum(axis=2)[np.arange(3000), labels]
    assert abs(own_block.mean() - (0.25 + 0.75 / 5)) < 0.01  # topicality + chance
    assert (g.mask_tr.sum(), g.mask_va.sum(), g.mask_te.sum()) == (100, 500, 1000)
    assert not (g.mask_tr & g.mask_va).any() and not (g.mask_va & g.mask_te).any()
    again = load_graph("sbm:3000")
    assert (again.a != a).nnz == 0 and (again.x != g.x).nnz == 0
    assert (again.mask_tr == g.mask_tr).all()


@pytest.mark.parametrize("name", ["sbm:abc", "sbm:50", "sbm:"])
def test_bad_generated_graph_names(name):
    with pytest.raises(UsageError, match=f"{name!r}: write sbm:N with a node count N >= 100"):
        load_graph(name)


def test_impossible_generated_graphs_are_refused():
    with pytest.raises(UsageError, match="a generated graph needs at least 100 nodes, 2 classes "
                                         "and a word per class; got 100 nodes, 6 classes, 5"):
        sbm_graph(100, n_classes=6, n_features=5)


def _identity_feature_graph():
    """A random graph with one-hot identity features (a sampled row names its node) and a
    node without edges."""
    rng = np.random.default_rng(0)
    edges = rng.integers(0, 299, size=(900, 2))  # node 299 has no edge
    labels = rng.integers(0, 3, size=300)
    return make_graph([str(i) for i in range(300)], edges, labels=labels,
                      class_names=["a", "b", "c"])


def _decode(batch):
    """Global ids of the sampled nodes (from identity features), edges, labels, weights."""
    (x, a), y, weights = batch
    x = tf.sparse.reorder(x)
    assert np.array_equal(x.indices.numpy()[:, 0], np.arange(x.dense_shape[0]))  # one per row
    ids = x.indices.numpy()[:, 1]
    local_edges = a.indices.numpy()
    return ids, ids[local_edges], y.numpy(), weights.numpy()


def test_sampled_subgraphs_hold_the_seeds_first_and_only_edges_of_the_graph():
    graph = _identity_feature_graph()
    nodes = np.array([5, 17, 299, 42, 101, 7, 250])
    batches = sampled_batches(graph, nodes, lambda a: a, batch_size=4, fanouts=(3, 2),
                              shuffle=False)
    adjacency = graph.a.toarray()
    two_hops = (adjacency + np.eye(300)) @ (adjacency + np.eye(300)) > 0
    first_pass = [_decode(b) for b in batches]
    assert [len(b[3][b[3] > 0]) for b in first_pass] == [4, 3]
    for (ids, edges, y, weights), seeds in zip(first_pass, (nodes[:4], nodes[4:]), strict=True):
        assert ids[:len(seeds)].tolist() == seeds.tolist() and len(set(ids)) == len(ids)
        np.testing.assert_allclose(weights, np.r_[np.full(len(seeds), 1 / len(seeds)),
                                                  np.zeros(len(ids) - len(seeds))])
        np.testing.assert_array_equal(y, graph.y[ids])
        assert adjacency[edges[:, 0], edges[:, 1]].all()  # sampled edges are graph edges
        assert two_hops[np.ix_(seeds, ids)].any(axis=0).all()  # within two hops of a seed
        for seed in seeds:  # 1 to 3 drawn neighbours, or none for the node without edges
            drawn = set(edges[edges[:, 0] == seed, 1])
            assert (1 <= len(drawn) <= 3) if adjacency[seed].any() else not drawn
    second_pass = [_decode(b) for b in batches]
    for one, two in zip(first_pass, second_pass, strict=True):  # shuffle=False: the same
        assert all(np.array_equal(u, v) for u, v in zip(one, two, strict=True))


def test_training_batches_are_seeded_and_change_from_epoch_to_epoch():
    graph = _identity_feature_graph()
    nodes = np.arange(0, 300, 3)

    def epoch(batches):
        return [_decode(b)[0].tolist() for b in batches]

    def seeds(epoch_ids):
        return [i for ids, size in zip(epoch_ids, (32, 32, 32, 4), strict=True)
                for i in ids[:size]]

    batches = sampled_batches(graph, nodes, lambda a: a, batch_size=32, seed=4)
    first, second = epoch(batches), epoch(batches)
    assert first != second and seeds(first) != seeds(second)  # reshuffled, drawn anew
    for ids in (first, second):  # every training node is a seed once per epoch
        assert sorted(seeds(ids)) == nodes.tolist()
    again = sampled_batches(graph, nodes, lambda a: a, batch_size=32, seed=4)
    assert epoch(again) == first and epoch(again) == second
