"""A generated node-classification graph of any size: a seeded stochastic block model with
class-correlated bag-of-words features, built in ``O(edges + nonzero features)`` memory.

``sbm_graph(n)``, with defaults:

- each node gets one of ``n_classes = 5`` classes uniformly at random;
- ``n · degree / 2`` edges (``degree = 10``, about 10 edges per node): each picks a node ``u``
  uniformly, and its other end ``v`` among ``u``'s class with probability ``homophily = 0.6``,
  among all nodes otherwise (so 68 % of edges join nodes of one class); repeats and self
  loops are dropped;
- ``words = 20`` word draws per node from a vocabulary of ``n_features = 500``: a word of the
  node's class's block of ``n_features / n_classes`` words with probability ``topicality = 0.25``,
  any word otherwise; the counts are row-normalised (as the Planetoid features are);
- a random split: ``max(20 · n_classes, n / 100)`` training nodes, ``min(500, ·)`` validation
  and ``min(1000, ·)`` test nodes (the Planetoid sizes on small graphs).

Neither the features alone (40 % of a node's words are from its class's block, against 15 % from
each other block) nor the graph alone decides a node's class; together they nearly do (a GCN
gets about 97 % of the test nodes of ``sbm:5000`` right, against 20 % for the majority class).
No ``n × n`` array is ever built.
"""

import numpy as np
import scipy.sparse as sp

from keras_models.utils.errors import UsageError


def _stochastic_block_edges(labels, n_edges, homophily, rng):
    """``(n_edges, 2)`` endpoints: ``v`` in ``u``'s class with probability ``homophily``."""
    n = len(labels)
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    u = rng.integers(n, size=n_edges)
    offset = (rng.random(n_edges) * counts[labels[u]]).astype(np.int64)
    same_class = order[starts[labels[u]] + offset]
    v = np.where(rng.random(n_edges) < homophily, same_class, rng.integers(n, size=n_edges))
    return np.stack([u, v], axis=1)


def _bag_of_words(labels, n_features, n_classes, words, topicality, rng):
    """Row-normalised word counts ``(n, n_features)`` CSR, biased to each class's block."""
    n = len(labels)
    block = n_features // n_classes
    rows = np.repeat(np.arange(n), words)
    topical = rng.random(n * words) < topicality
    cols = np.where(topical, labels[rows] * block + rng.integers(block, size=n * words),
                    rng.integers(n_features, size=n * words))
    counts = sp.csr_matrix((np.ones(n * words, np.float32), (rows, cols)), shape=(n, n_features))
    counts.sum_duplicates()
    return (sp.diags(1.0 / np.asarray(counts.sum(axis=1)).ravel()) @ counts).tocsr()


def _split(n, n_classes, rng):
    """Random disjoint train/val/test masks of the sizes in the module docstring."""
    n_train = min(max(20 * n_classes, n // 100), n // 2)
    n_val = min(500, (n - n_train) // 2)
    n_test = min(1000, n - n_train - n_val)
    order = rng.permutation(n)
    masks = {}
    for split, (start, size) in {"train": (0, n_train), "val": (n_train, n_val),
                                 "test": (n_train + n_val, n_test)}.items():
        masks[split] = np.zeros(n, dtype=bool)
        masks[split][order[start:start + size]] = True
    return masks


def sbm_graph(n_nodes, *, n_classes=5, degree=10, homophily=0.6, n_features=500, words=20,
              topicality=0.25, seed=0):
    """The generated graph of ``n_nodes`` nodes (module docstring) as a spektral ``Graph``."""
    from pipelines.graph.datasets import make_graph

    if n_nodes < 100 or n_features < n_classes or n_classes < 2:
        raise UsageError(f"a generated graph needs at least 100 nodes, 2 classes and a word per "
                         f"class; got {n_nodes} nodes, {n_classes} classes, {n_features} words")
    rng = np.random.default_rng(seed)
    labels = rng.integers(n_classes, size=n_nodes)
    edges = _stochastic_block_edges(labels, n_nodes * degree // 2, homophily, rng)
    x = _bag_of_words(labels, n_features, n_classes, words, topicality, rng)
    return make_graph(
        [str(i) for i in range(n_nodes)], edges, x=x, labels=labels,
        class_names=[f"block {c}" for c in range(n_classes)], masks=_split(n_nodes, n_classes, rng),
    )
