"""The link-prediction split of Kipf & Welling's "Variational Graph Auto-Encoders" (tkipf/gae).

Of the ``m`` undirected edges of a graph (each counted once, self loops ignored), a seeded
shuffle puts ``⌊m / 20⌋`` (5 %) in validation, ``⌊m / 10⌋`` (10 %) in test and the rest (about
85 %) in training. Validation and test each get as many *non-edges*: node pairs ``i < j`` that
are not edges of the whole graph, drawn uniformly at random without repeats, disjoint between
validation and test. Messages pass over the training edges only (``train_adjacency``), so no
validation or test edge is visible to the encoder.

Edges and non-edges are ``int64`` arrays ``(k, 2)`` with ``i < j`` in each row.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from keras_models.utils.errors import require

VAL_DIVISOR, TEST_DIVISOR = 20, 10  # ⌊m/20⌋ validation (5 %) and ⌊m/10⌋ test (10 %) edges
MIN_EDGES = TEST_DIVISOR * 2  # so that validation, test and training get at least one edge


@dataclass(frozen=True)
class EdgeSplit:
    """Training edges, and positive/negative node pairs for validation and test."""

    n_nodes: int
    train_edges: np.ndarray
    val_edges: np.ndarray
    val_non_edges: np.ndarray
    test_edges: np.ndarray
    test_non_edges: np.ndarray

    def train_adjacency(self):
        """The symmetric 0/1 CSR adjacency of the training edges: the message-passing graph."""
        return edges_to_adjacency(self.train_edges, self.n_nodes)

    def pairs(self, part):
        """``(pairs (k, 2), labels (k,))`` of ``part`` ("val" or "test"): edges 1, non-edges 0."""
        edges, non_edges = getattr(self, f"{part}_edges"), getattr(self, f"{part}_non_edges")
        labels = np.concatenate([np.ones(len(edges)), np.zeros(len(non_edges))]).astype("float32")
        return np.concatenate([edges, non_edges]), labels


def undirected_edges(a):
    """Each edge ``i < j`` of the symmetric adjacency ``a`` once, ``int64 (m, 2)``, sorted."""
    upper = sp.triu(sp.csr_matrix(a), k=1).tocoo()
    edges = np.stack([upper.row, upper.col], axis=1).astype(np.int64)
    return edges[np.lexsort((edges[:, 1], edges[:, 0]))]


def edges_to_adjacency(edges, n_nodes):
    """The symmetric 0/1 float32 CSR adjacency ``(n_nodes, n_nodes)`` of ``edges`` (k, 2)."""
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    a = sp.coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_nodes, n_nodes))
    return (a.tocsr() > 0).astype(np.float32)


def sample_non_edges(n_nodes, taken, count, rng):
    """``count`` distinct pairs ``i < j`` whose key ``i * n_nodes + j`` is not in ``taken``.

    ``taken`` (a set of keys) grows by the drawn pairs. Draws in rounds of random pairs and keeps
    the new ones: fast for sparse graphs, where almost every pair is a non-edge.
    """
    chosen = []
    while len(chosen) < count:
        i, j = rng.integers(0, n_nodes, size=(2, 2 * (count - len(chosen)) + 16))
        for u, v in zip(np.minimum(i, j), np.maximum(i, j), strict=True):
            key = int(u) * n_nodes + int(v)
            if u != v and key not in taken and len(chosen) < count:
                taken.add(key)
                chosen.append((u, v))
    return np.array(chosen, dtype=np.int64).reshape(-1, 2)


def split_edges(a, seed=0):
    """The seeded 85 / 5 / 10 % ``EdgeSplit`` of the symmetric adjacency ``a`` (see module doc).

    Raises ``UsageError`` when the graph has fewer than ``MIN_EDGES`` edges, or too few
    non-edges to pair every validation and test edge with one.
    """
    n = a.shape[0]
    edges = undirected_edges(a)
    m = len(edges)
    require(
        m >= MIN_EDGES,
        f"the graph has {m} edge(s): too few to split 85/5/10 % for link prediction (at least "
        f"{MIN_EDGES} are needed so that validation and test get one edge each); use a larger "
        "graph",
    )
    n_val, n_test = m // VAL_DIVISOR, m // TEST_DIVISOR
    n_non_edges = n * (n - 1) // 2 - m
    require(
        n_non_edges >= n_val + n_test,
        f"the graph has only {n_non_edges} non-edge(s), fewer than the {n_val + n_test} that "
        "validation and test need as negatives; link prediction needs a graph that is not "
        "(nearly) complete",
    )
    rng = np.random.default_rng(seed)
    order = rng.permutation(m)
    val, test, train = np.split(edges[order], [n_val, n_val + n_test])
    taken = {int(u) * n + int(v) for u, v in edges}
    test_non_edges = sample_non_edges(n, taken, n_test, rng)
    val_non_edges = sample_non_edges(n, taken, n_val, rng)
    return EdgeSplit(n, train, val, val_non_edges, test, test_non_edges)
