"""Node-classification graphs as spektral ``Graph`` objects, by name or from files.

Every graph has ``x`` ``(n_nodes, n_features)`` (SciPy CSR float32: bag-of-words and one-hot
features are mostly zeros), ``a`` (SciPy CSR, symmetric, 0/1, no self loops), ``y`` one-hot
``(n_nodes, n_classes)`` (all-zero rows for unlabelled nodes), boolean ``mask_tr``/``mask_va``/
``mask_te``, and ``node_names``/``class_names`` for printing.

- ``example``: the 6-node graph A–F of the assignment (edges A–B, A–E, A–F, B–D, C–D, D–F),
  one-hot features; a toy labelling {A, B, E} vs {C, D, F}, train A, D / val B, F / test C, E.
- ``karate``: Zachary's karate club (networkx, 34 nodes, 78 edges), one-hot features, label =
  the club each member joined; ``KARATE_SPLIT`` fixes 4 + 4 train, 4 + 4 val, 18 test nodes.
- ``cora``, ``citeseer``, ``pubmed``: the Planetoid graphs and public split (``planetoid``),
  features row-normalised as in the GCN and GAT papers.
- ``sbm:N``: a generated graph of ``N`` nodes (``generated.sbm_graph``), any size.
- any other name: an edge-list file (``edge_list``), with optional features and labels files;
  nodes named only in the features or labels file are nodes without edges.
"""

from pathlib import Path

import networkx as nx
import numpy as np
import scipy.sparse as sp

from keras_models.utils.errors import UsageError
from pipelines.graph import edge_list

BUILT_IN = ("example", "karate")
PLANETOID = ("cora", "citeseer", "pubmed")
GENERATED_PREFIX = "sbm:"  # sbm:N, a generated graph of N nodes

EXAMPLE_EDGES = (("A", "B"), ("A", "E"), ("A", "F"), ("B", "D"), ("C", "D"), ("D", "F"))

# The karate club split, fixed by hand: 4 members of each club for training (including both
# leaders, 0 = Mr. Hi and 33 = the officer), 4 of each for validation, the other 18 for testing.
KARATE_SPLIT = {
    "train": (0, 3, 7, 13, 23, 29, 32, 33),
    "val": (1, 5, 10, 19, 24, 26, 28, 31),
}


def make_graph(names, edges, x=None, labels=None, class_names=(), masks=None):
    """A spektral ``Graph`` from node names, index-pair edges and optional features/labels.

    ``edges`` is ``(n_edges, 2)`` node indices (each undirected edge in either direction or
    both; nodes in no edge are isolated); ``x`` dense or SciPy sparse (default: one-hot
    identity); ``labels`` holds a class index per node (-1 = unlabelled); ``masks`` maps
    train/val/test to boolean arrays. Memory ``O(n + edges + nonzero features)``.
    """
    import keras_models.backend  # noqa: F401  (one Keras before spektral loads TensorFlow)

    from spektral.data import Graph  # spektral loads TensorFlow: only when a graph is built

    n = len(names)
    rows, cols = np.asarray(edges, dtype=np.int64).reshape(-1, 2).T
    a = sp.coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
    a = (a + a.T).tocsr()
    a.setdiag(0.0)
    a.eliminate_zeros()
    a.data[:] = 1.0
    x = sp.identity(n, np.float32, "csr") if x is None else sp.csr_matrix(x, dtype=np.float32)
    y = np.zeros((n, max(len(class_names), 1)), np.float32)
    if labels is not None:
        labelled = np.asarray(labels) >= 0
        y[labelled, np.asarray(labels)[labelled]] = 1.0
    masks = masks or {}
    no_mask = np.zeros(n, dtype=bool)
    graph = Graph(
        a=a, y=y,
        mask_tr=masks.get("train", no_mask), mask_va=masks.get("val", no_mask),
        mask_te=masks.get("test", no_mask),
        node_names=list(names), class_names=list(class_names),
    )
    graph.x = x  # after construction: spektral's Graph rejects sparse features, reads them fine
    return graph


def _masks_from_nodes(n, split):
    """Boolean train/val/test masks from train and val node lists (test = the rest)."""
    masks = {s: np.zeros(n, dtype=bool) for s in ("train", "val")}
    for s, nodes in split.items():
        masks[s][list(nodes)] = True
    masks["test"] = ~(masks["train"] | masks["val"])
    return masks


def example_graph():
    """The assignment's 6-node graph A–F."""
    names = list("ABCDEF")
    edges = [(names.index(u), names.index(v)) for u, v in EXAMPLE_EDGES]
    labels = [0, 0, 1, 1, 0, 1]
    masks = _masks_from_nodes(6, {"train": (0, 3), "val": (1, 5)})
    return make_graph(names, edges, labels=labels, class_names=["ABE", "CDF"], masks=masks)


def karate_graph():
    """Zachary's karate club, label = club ("Mr. Hi" or "Officer")."""
    g = nx.karate_club_graph()
    clubs = ["Mr. Hi", "Officer"]
    labels = [clubs.index(g.nodes[v]["club"]) for v in range(g.number_of_nodes())]
    masks = _masks_from_nodes(g.number_of_nodes(), KARATE_SPLIT)
    return make_graph(
        [str(v) for v in g.nodes], list(g.edges), labels=labels, class_names=clubs, masks=masks
    )


def row_normalize(x):
    """Each row divided by its sum (rows summing to 0 stay 0), as a float32 CSR matrix."""
    x = sp.csr_matrix(x, dtype=np.float32)
    sums = np.asarray(x.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums != 0)
    return (sp.diags(scale) @ x).tocsr()


def citation_graph(name, data_dir=None, raw_features=False):
    """A Planetoid graph with its public split and row-normalised (or, with ``raw_features``,
    the files' 0/1) features."""
    from pipelines.graph.planetoid import load_citation

    dataset = load_citation(name, data_dir)
    g = dataset[0]
    labels = np.where(g.y.sum(axis=1) > 0, g.y.argmax(axis=1), -1)
    masks = {"train": dataset.mask_tr, "val": dataset.mask_va, "test": dataset.mask_te}
    n_classes = g.y.shape[1]
    return make_graph(
        [str(i) for i in range(g.n_nodes)], np.stack(sp.triu(g.a, k=1).nonzero(), axis=1),
        x=sp.csr_matrix(g.x, dtype=np.float32) if raw_features else row_normalize(g.x),
        labels=labels,
        class_names=[str(c) for c in range(n_classes)], masks=masks,
    )


def file_graph(path, features=None, labels=None):
    """A user's graph: edge list ``path`` plus optional features and labels files.

    A node named in the features or labels file but in no edge is a node without edges; it is
    added after the nodes of the edge list.
    """
    names, edges = edge_list.read_edges(path)
    index = {name: i for i, name in enumerate(names)}
    rows = edge_list.read_features(features, index) if features else None
    classes, y, masks = edge_list.read_labels(labels, index) if labels else ((), None, None)
    x = edge_list.feature_matrix(features, rows, index) if features else None
    return make_graph(list(index), edges, x=x, labels=y, class_names=classes, masks=masks)


def generated_size(name):
    """``N`` of the graph name ``sbm:N`` (an integer >= 100)."""
    size = name[len(GENERATED_PREFIX):].replace("_", "")
    if not size.isdigit() or int(size) < 100:
        raise UsageError(f"{name!r}: write {GENERATED_PREFIX}N with a node count N >= 100, "
                         f"e.g. {GENERATED_PREFIX}100000")
    return int(size)


def load_graph(name, *, data_dir=None, features=None, labels=None, raw_features=False):
    """The graph called ``name`` (built in, Planetoid or ``sbm:N``), else the edge-list file."""
    if name in BUILT_IN or name in PLANETOID or name.startswith(GENERATED_PREFIX):
        if features or labels:
            raise UsageError(f"--features/--labels go with an edge-list file, not {name!r}; "
                             "drop them or pass your own edge list")
        if name == "example":
            return example_graph()
        if name == "karate":
            return karate_graph()
        if name.startswith(GENERATED_PREFIX):
            from pipelines.graph.generated import sbm_graph

            return sbm_graph(generated_size(name))
        return citation_graph(name, data_dir, raw_features)
    if not Path(name).exists():
        raise UsageError(
            f"{name!r} is neither a dataset nor a file; choose one of "
            f"{', '.join(BUILT_IN + PLANETOID)}, {GENERATED_PREFIX}N or pass the path of an "
            "edge list"
        )
    return file_graph(name, features, labels)
