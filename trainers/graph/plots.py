"""Drawings of graphs (PNG): nodes coloured by label or by propagation depth, GAT attention."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np

from keras_models.utils.atomic import save_figure
from keras_models.utils.graph_algebra import UNREACHABLE, depths_from


def _networkx(graph):
    g = nx.from_scipy_sparse_array(graph.a)
    return nx.relabel_nodes(g, dict(enumerate(graph.node_names)))


def _layout(g):
    return nx.spring_layout(g, seed=0)


def draw_graph(graph, path, *, color="label", source=None):
    """Draw ``graph`` to ``path``; ``color`` is "label" or "depth" (from node index ``source``).

    Depth colours show after how many GCN layers each node has seen ``source``'s features.
    """
    g = _networkx(graph)
    figure, axis = plt.subplots(figsize=(6, 5))
    if color == "depth":
        depth = depths_from(graph.a, source)
        values = np.where(depth == UNREACHABLE, np.nan, depth)
        title = f"propagation depth from {graph.node_names[source]}"
        cmap, labels = "YlOrRd", {n: f"{n}\n{int(d)}" if d >= 0 else n
                                   for n, d in zip(graph.node_names, depth, strict=True)}
    else:
        labelled = graph.y.sum(axis=1) > 0
        values = np.where(labelled, graph.y.argmax(axis=1), np.nan)
        title = "labels: " + ", ".join(
            f"{i} = {c}" for i, c in enumerate(graph.class_names)
        ) if graph.class_names else "unlabelled graph"
        cmap, labels = "tab10", None
    small = graph.n_nodes <= 60
    nx.draw_networkx(
        g, _layout(g), ax=axis, node_color=values, cmap=cmap, vmin=np.nanmin(values),
        vmax=np.nanmax(values), with_labels=small, labels=labels if small else None,
        node_size=500 if small else 20, font_size=8, edge_color="#999999",
    )
    axis.set_title(title)
    axis.set_axis_off()
    save_figure(figure, path)
    plt.close(figure)


def draw_attention(graph, alpha, node, path):
    """Draw node index ``node``'s neighbourhood, edges weighted by attention ``alpha[node, :, j]``.

    ``alpha`` is one sparse ``(n_nodes, n_nodes)`` matrix per head from
    ``gat.attention_coefficients``; the heads are averaged, and the self-attention is written
    on the centre node.
    """
    weights = sum(np.asarray(head[node].toarray()).ravel() for head in alpha) / len(alpha)
    neighbours = [j for j in np.flatnonzero(weights > 0) if j != node]
    g = nx.star_graph([node, *neighbours])
    names = {i: graph.node_names[i] for i in g.nodes}
    edge_weights = [weights[j] for _, j in g.edges]
    figure, axis = plt.subplots(figsize=(6, 5))
    positions = nx.shell_layout(g, [[node], neighbours]) if neighbours else {node: (0, 0)}
    nx.draw_networkx_nodes(g, positions, ax=axis, node_color="#dddddd", node_size=500)
    nx.draw_networkx_labels(g, positions, labels=names, ax=axis, font_size=8)
    drawn = nx.draw_networkx_edges(
        g, positions, ax=axis, width=[1 + 8 * w for w in edge_weights],
        edge_color=edge_weights, edge_cmap=plt.cm.viridis, edge_vmin=0,
        edge_vmax=max(weights.max(), 1e-6),
    )
    nx.draw_networkx_edge_labels(
        g, positions, ax=axis, font_size=7,
        edge_labels={(u, v): f"{weights[v]:.2f}" for u, v in g.edges},
    )
    figure.colorbar(drawn, ax=axis, label="attention (mean over heads)")
    axis.set_title(
        f"GAT attention of node {graph.node_names[node]} (self: {weights[node]:.2f})"
    )
    axis.set_axis_off()
    save_figure(figure, path)
    plt.close(figure)


def draw_roc(curves, path, *, title="test ROC"):
    """Draw ROC curves ``[(label, fpr, tpr), ...]`` in one figure, with the chance diagonal."""
    figure, axis = plt.subplots(figsize=(5, 5))
    for label, fpr, tpr in curves:
        axis.plot(fpr, tpr, label=label, linewidth=1)
    axis.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="chance")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title=title,
             xlim=(0, 1), ylim=(0, 1.01))
    axis.legend(loc="lower right", fontsize=7)
    save_figure(figure, path)
    plt.close(figure)
