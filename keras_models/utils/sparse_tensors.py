"""Sparse matrices between SciPy and TensorFlow, and an undirected adjacency from an edge list.

Nothing here builds an ``n × n`` dense array: every function is ``O(n + nonzeros)`` in memory.
"""

from keras_models.backend import tf

import numpy as np
import scipy.sparse as sp


def sparse_tensor(matrix, dtype=tf.float32):
    """A SciPy sparse (or dense NumPy) matrix as a ``tf.SparseTensor`` in row-major order."""
    csr = sp.csr_matrix(matrix)
    csr.sum_duplicates()  # also sorts the columns of each row
    rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    indices = np.stack([rows, csr.indices.astype(np.int64)], axis=1)
    return tf.SparseTensor(indices, tf.constant(csr.data, dtype), csr.shape)


def sparse_dense_matmul(a, b):
    """``a @ b`` for a rank-2 ``tf.SparseTensor`` ``a`` (indices in row-major order, as every
    sparse tensor of seqgraph has them) and a dense matrix ``b``; by TensorFlow's CSR kernel
    when ``a``'s row count is static (full-batch training), else by ``tf.sparse``'s.

    ``tf.sparse.sparse_dense_matmul`` slows down 20-fold from 16 to 64 columns of ``b``: Cora's
    features (49 216 nonzeros) times a 64-column kernel took 11 ms there, against 0.8 ms by CSR
    with the conversion included; the gradient 18 ms against 2.7 ms (one thread, a shared
    machine). TensorFlow's gradient of the CSR product builds its part for ``a`` from static
    shapes and fails when the row count is unknown (sampled batches, traced signatures); a
    ``tf.custom_gradient`` around it cannot be exported (its gradient captures the CSR matrix).
    """
    if a.shape[0] is None:
        return tf.sparse.sparse_dense_matmul(a, b)
    csr = tf.raw_ops.SparseTensorToCSRSparseMatrix(
        indices=a.indices, values=a.values, dense_shape=a.dense_shape)
    product = tf.raw_ops.SparseMatrixMatMul(a=csr, b=b)
    product.set_shape([a.shape[0], b.shape[-1]])
    return product


def undirected_adjacency(edges, n_nodes):
    """The symmetric 0/1 adjacency of an edge list, inside a TF graph.

    ``edges`` is int ``(n_edges, 2)``, each undirected edge in either direction or both;
    repeats and self loops are dropped. Returns a float32 ``tf.SparseTensor``
    ``(n_nodes, n_nodes)`` in row-major order. Fails (``InvalidArgumentError``) if an edge names
    a node outside ``[0, n_nodes)``. ``O(n_edges log n_edges)``, never ``n_nodes²`` memory.
    """
    edges = tf.cast(tf.reshape(edges, [-1, 2]), tf.int64)
    n_nodes = tf.cast(n_nodes, tf.int64)
    with tf.control_dependencies([
        tf.debugging.assert_non_negative(edges, message="edges name a negative node"),
        tf.debugging.assert_less(edges, n_nodes, message="edges name a node >= n_nodes"),
    ]):
        u, v = tf.identity(edges[:, 0]), edges[:, 1]
    keep = tf.not_equal(u, v)
    u, v = tf.boolean_mask(u, keep), tf.boolean_mask(v, keep)
    keys = tf.sort(tf.concat([u * n_nodes + v, v * n_nodes + u], axis=0))
    first = tf.concat([[True], tf.not_equal(keys[1:], keys[:-1])], axis=0)
    keys = tf.boolean_mask(keys, first)
    indices = tf.stack([keys // n_nodes, keys % n_nodes], axis=1)
    return tf.SparseTensor(indices, tf.ones(tf.shape(keys), tf.float32), [n_nodes, n_nodes])
