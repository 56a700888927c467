"""The link-prediction edge split and the edge list's note on dropped lines."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from keras_models.utils.errors import UsageError
from pipelines.graph.datasets import karate_graph, load_graph
from pipelines.graph.edge_split import split_edges, undirected_edges


def _keys(pairs, n):
    return {int(u) * n + int(v) for u, v in pairs}


@pytest.mark.parametrize("seed", [0, 7])
def test_karate_split_has_the_paper_sizes_and_no_leaks(seed):
    graph = karate_graph()
    n, edges = graph.n_nodes, undirected_edges(graph.a)
    split = split_edges(graph.a, seed)
    assert len(edges) == 78
    sizes = [len(split.train_edges), len(split.val_edges), len(split.test_edges)]
    assert sizes == [78 - 3 - 7, 78 // 20, 78 // 10]
    assert (len(split.val_non_edges), len(split.test_non_edges)) == (3, 7)
    train, val, test = (_keys(e, n) for e in (split.train_edges, split.val_edges,
                                               split.test_edges))
    assert train | val | test == _keys(edges, n) and not (train & val or train & test or val & test)
    val_neg, test_neg = _keys(split.val_non_edges, n), _keys(split.test_non_edges, n)
    assert len(val_neg) == 3 and len(test_neg) == 7 and not val_neg & test_neg
    assert not (val_neg | test_neg) & _keys(edges, n)
    for pairs in (split.train_edges, split.val_non_edges, split.test_non_edges):
        assert (pairs[:, 0] < pairs[:, 1]).all()
    # The message-passing graph has exactly the training edges, symmetric, no loops.
    a_train = split.train_adjacency()
    assert _keys(undirected_edges(a_train), n) == train
    assert (a_train != a_train.T).nnz == 0 and a_train.diagonal().sum() == 0
    pairs, labels = split.pairs("test")
    assert _keys(pairs[labels == 1], n) == test and _keys(pairs[labels == 0], n) == test_neg


def test_the_split_is_seeded():
    a = karate_graph().a
    first, again, other = split_edges(a, 3), split_edges(a, 3), split_edges(a, 4)
    np.testing.assert_array_equal(first.test_edges, again.test_edges)
    np.testing.assert_array_equal(first.val_non_edges, again.val_non_edges)
    assert not np.array_equal(first.test_edges, other.test_edges)


def test_a_graph_with_too_few_edges_is_refused():
    path = nx.path_graph(20)  # 19 edges
    with pytest.raises(UsageError) as error:
        split_edges(nx.to_scipy_sparse_array(path))
    assert str(error.value) == (
        "the graph has 19 edge(s): too few to split 85/5/10 % for link prediction (at least 20 "
        "are needed so that validation and test get one edge each); use a larger graph"
    )
    split = split_edges(nx.to_scipy_sparse_array(nx.path_graph(21)))  # 20 edges: 17 / 1 / 2
    assert (len(split.train_edges), len(split.val_edges), len(split.test_edges)) == (17, 1, 2)


def test_a_complete_graph_has_no_non_edges_to_sample():
    with pytest.raises(UsageError, match="has only 0 non-edge"):
        split_edges(sp.csr_matrix(nx.to_numpy_array(nx.complete_graph(8))))


def test_edge_list_drops_self_loops_and_repeats_and_says_which(tmp_path, capsys):
    path = tmp_path / "g.txt"
    path.write_text("a b\nb b\nb c\n# comment\nb a\nc a\nc c\na b\n")
    graph = load_graph(str(path))
    assert capsys.readouterr().err == (
        f"seqgraph: warning: {path}: dropped 2 self loops (lines 2, 7) and 2 repeated edges "
        "(lines 5, 8)\n"
    )
    assert graph.a.nnz == 6 and graph.a.diagonal().sum() == 0
    path.write_text("a b\nb c\n")
    load_graph(str(path))
    assert capsys.readouterr().err == ""
