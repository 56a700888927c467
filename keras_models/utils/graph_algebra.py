"""Graph algebra of GCNs in NumPy/SciPy: Ã, Â and how many layers information needs to travel.

For an adjacency ``A`` (``n × n``, dense or SciPy sparse):

- ``Ã = A + I`` (``with_self_loops``), every node also keeps its own features;
- ``Â = D̃^-½ Ã D̃^-½`` with ``D̃_ii = Σ_j Ã_ij`` (``normalized_adjacency``), the filter of one
  ``GCNConv`` layer (equal to spektral's ``gcn_filter``);
- after ``k`` layers node ``t`` has seen node ``s`` iff ``(Ã^k)_ts > 0``, so the propagation
  depth from ``s`` to ``t`` is the smallest such ``k``, the shortest-path distance
  (``propagation_depths``).
"""

import numpy as np
import scipy.sparse as sp

UNREACHABLE = -1


def _dense(a):
    return np.asarray(a.toarray() if sp.issparse(a) else a, dtype=np.float64)


def with_self_loops(a):
    """Ã = A + I as a dense float array (existing self loops are kept and incremented)."""
    a = _dense(a)
    return a + np.eye(a.shape[0])


def normalized_adjacency(a):
    """Â = D̃^-½ (A + I) D̃^-½ as a dense float array; rows of isolated nodes stay finite."""
    a_tilde = with_self_loops(a)
    inv_sqrt_degree = 1.0 / np.sqrt(a_tilde.sum(axis=1))
    return a_tilde * inv_sqrt_degree[:, None] * inv_sqrt_degree[None, :]


def propagation_depths(a):
    """``depth[t, s]``: fewest GCN layers after which ``s``'s features reach ``t``.

    ``depth[s, s] = 0``; ``UNREACHABLE`` (-1) when no number of layers suffices. Computed by
    growing the reach ``R_k = [Ã^k > 0]`` one layer at a time.
    """
    step = with_self_loops(a) > 0
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


def propagation_depth(a, source, target):
    """Fewest GCN layers for ``source``'s features to reach ``target`` (None if never)."""
    depth = propagation_depths(a)[target, source]
    return None if depth == UNREACHABLE else int(depth)
