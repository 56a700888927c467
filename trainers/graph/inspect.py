"""``seqgraph graph inspect``'s text: Ã, Â and propagation depths of a graph, and node lookup."""

from keras_models.utils.errors import require

PRINT_LIMIT = 12  # print whole matrices only for graphs this small


def node_index(graph, name, option):
    """The index of node ``name``, or a UsageError naming the option."""
    require(
        name in graph.node_names,
        f"{option} {name!r} is not a node of the graph; use one of "
        f"{', '.join(graph.node_names[:10])}{' ...' if graph.n_nodes > 10 else ''}",
    )
    return graph.node_names.index(name)


def _matrix(m):
    import numpy as np
    import scipy.sparse as sp

    m = m.toarray() if sp.issparse(m) else m
    return np.array2string(m, precision=3, suppress_small=True, max_line_width=120)


def inspect_text(graph, source=None, target=None):
    """Ã, Â and the depth matrix (small graphs), and the depth from ``source`` to ``target``."""
    from keras_models.utils.graph_algebra import (
        normalized_adjacency,
        propagation_depth,
        propagation_depths,
        with_self_loops,
    )

    names = graph.node_names
    lines = [f"{graph.n_nodes} nodes, {graph.a.nnz // 2} edges, nodes {' '.join(names[:12])}"
             f"{' ...' if graph.n_nodes > 12 else ''}"]
    if graph.n_nodes <= PRINT_LIMIT:
        lines += ["", "Ã = A + I:", _matrix(with_self_loops(graph.a)), "",
                  "Â = D̃^-½ Ã D̃^-½:", _matrix(normalized_adjacency(graph.a)), "",
                  "propagation depth [target, source] (GCN layers; -1 = never):",
                  _matrix(propagation_depths(graph.a))]
    if source is not None and target is not None:
        depth = propagation_depth(graph.a, source, target)
        reach = "never" if depth is None else f"{depth} GCN layer(s)"
        lines += ["", f"depth from {names[source]} to {names[target]}: {reach}"]
    return "\n".join(lines)
