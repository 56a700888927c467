"""Graph algebra of GCNs in NumPy/SciPy: Ã, Â and how many layers information needs to travel.

For an adjacency ``A`` (``n × n``, SciPy sparse or dense):

- ``Ã = A + I`` (``with_self_loops``), every node also keeps its own features;
- ``Â = D̃^-½ Ã D̃^-½`` with ``D̃_ii = Σ_j Ã_ij`` (``normalized_adjacency``), the filter of one
  ``GCNConv`` layer (equal to spektral's ``gcn_filter``);
- after ``k`` layers node ``t`` has seen node ``s`` iff ``(Ã^k)_ts > 0``, so the propagation
  depth from ``s`` to ``t`` is the smallest such ``k``, the shortest-path distance
  (``propagation_depths`` for every pair, ``depths_from`` one source, ``propagation_depth``
  one pair);
- the nodes whose features reach a set of nodes within ``k`` layers (``receptive_field``): a
  model of ``k`` layers gives those nodes the same outputs on the subgraph they induce.

A sparse ``A`` gives sparse (CSR) results in ``O(n + edges)`` memory; only
``propagation_depths``, an ``n × n`` table by definition, is dense (for small graphs).
"""

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

UNREACHABLE = -1


def with_self_loops(a):
    """Ã = A + I (existing self loops are kept and incremented): CSR float64 for a SciPy
    sparse ``a``, a dense float64 array otherwise."""
    if sp.issparse(a):
        return (sp.csr_matrix(a, dtype=np.float64) + sp.identity(a.shape[0], format="csr"))
    a = np.asarray(a, dtype=np.float64)
    return a + np.eye(a.shape[0])


def normalized_adjacency(a):
    """Â = D̃^-½ (A + I) D̃^-½, CSR for a sparse ``a`` (dense for a dense one); isolated nodes
    get ``Â_ii = 1``."""
    a_tilde = with_self_loops(a)
    inv_sqrt_degree = 1.0 / np.sqrt(np.asarray(a_tilde.sum(axis=1)).ravel())
    if sp.issparse(a_tilde):
        scale = sp.diags(inv_sqrt_degree)
        return (scale @ a_tilde @ scale).tocsr()
    return a_tilde * inv_sqrt_degree[:, None] * inv_sqrt_degree[None, :]


def propagation_depths(a):
    """``depth[t, s]``: fewest GCN layers after which ``s``'s features reach ``t`` (dense).

    ``depth[s, s] = 0``; ``UNREACHABLE`` (-1) when no number of layers suffices. Computed by
    growing the reach ``R_k = [Ã^k > 0]`` one layer at a time.
    """
    step = np.asarray(with_self_loops(sp.csr_matrix(a)).toarray()) > 0
    n = step.shape[0]
    depth = np.full((n, n), UNREACHABLE, dtype=np.int64)
    reach = np.eye(n, dtype=bool)
    depth[reach] = 0
    for k in range(1, n):
        grown = (step.astype(np.int64) @ reach.astype(np.int64)) > 0
        new = grown & ~reach
        if not new.any():
            break
        depth[new] = k
        reach = grown
    return depth


def depths_from(a, source):
    """``depth[t]`` for every target ``t``: fewest GCN layers for ``source``'s features to reach
    it (``UNREACHABLE`` if never). A breadth-first search: ``O(n + edges)``, any graph size."""
    walks_back = sp.csr_matrix(a).T  # (Ã^k)_ts > 0: a walk t → … → s along the rows of A
    distance = shortest_path(walks_back, unweighted=True, indices=source)
    return np.where(np.isinf(distance), UNREACHABLE, distance).astype(np.int64)


def propagation_depth(a, source, target):
    """Fewest GCN layers for ``source``'s features to reach ``target`` (None if never)."""
    depth = depths_from(a, source)[target]
    return None if depth == UNREACHABLE else int(depth)


def receptive_field(a, nodes, hops):
    """The nodes whose features reach ``nodes`` within ``hops`` layers, sorted: every ``s`` with
    ``(Ã^hops)_ts > 0`` for some ``t`` in ``nodes`` (``nodes`` themselves included).

    A model of ``hops`` layers that aggregates each node's row of ``A`` computes the same
    outputs at ``nodes`` on the subgraph induced by these nodes (``a[field][:, field]``) as on
    the whole graph: each layer's outputs are exact one hop less far out. ``O(n + edges)``.
    """
    a = sp.csr_matrix(a)
    field = np.zeros(a.shape[0], dtype=bool)
    field[np.asarray(nodes, dtype=np.int64)] = True
    for _ in range(hops):
        field[a[field].indices] = True  # the columns of the field's rows: one hop further
    return np.flatnonzero(field)
