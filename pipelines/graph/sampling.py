"""Mini-batches of sampled neighbourhoods (GraphSAGE-style fan-out) as a ``tf.data`` pipeline.

For a batch of seed nodes, ``fanouts = (10, 10)`` draws 10 neighbours of each seed uniformly with
replacement (as GraphSAGE), then 10 neighbours of each node drawn so far: a two-layer model
sees up to 1 + 10 + 100 nodes per seed instead of the whole graph. Each element is the subgraph
those draws span, in the form the full-batch models take, so the same Keras model trains on it
with ``model.fit`` (and any ``tf.distribute`` strategy):

    ((x, A'), y, weights)

- ``x``: ``tf.SparseTensor`` ``(n_sampled, n_features)``, the sampled nodes' feature rows;
- ``A'``: ``preprocess_tf`` (the model's) of the sampled edges, symmetric, as a
  ``tf.SparseTensor`` ``(n_sampled, n_sampled)``;
- ``y``: one-hot labels ``(n_sampled, n_classes)``; ``weights``: ``1 / (batch · replicas)`` on
  the seeds (the first rows), 0 elsewhere, so a summed loss, summed again over the replicas
  that train in step, is the mean over the step's seeds.

The graph lives in the pipeline as CSR arrays (``tf.RaggedTensor`` rows of neighbours and of
feature columns/values); sampling is ``O(batch · Π fanouts)`` per batch, whatever the graph's
size. Seeded: the seeds' order and the draws are the same on every run with the same ``seed``,
and differ from epoch to epoch.

Why not TensorFlow GNN: ``tensorflow-gnn`` 1.0.3 installs beside TensorFlow 2.21 and tf-keras
2.21 and its in-memory sampler works, but it brings apache-beam, google-vizier and pyarrow into
the environment (downgrading protobuf 7 to 6 and pyarrow 26 to 25), and its samples are
``GraphTensor`` for its own layers: converting them to the ``tf.SparseTensor`` inputs of
seqgraph's spektral models would take as much code as the sampler itself.
"""

from keras_models.backend import tf

import numpy as np
import scipy.sparse as sp

from keras_models.utils.sparse_tensors import undirected_adjacency


def _ragged_rows(csr, values=False):
    """The rows of a CSR matrix as a ``tf.RaggedTensor`` of column indices (or of values)."""
    flat = csr.data.astype(np.float32) if values else csr.indices.astype(np.int64)
    return tf.RaggedTensor.from_row_splits(flat, csr.indptr.astype(np.int64), validate=False)


def _draw_neighbours(neighbours, nodes, fanout, seed):
    """``fanout`` uniform draws (with replacement) among each node's neighbours:
    ``(targets, sources)`` of the drawn edges; nodes without neighbours draw nothing."""
    starts = tf.gather(neighbours.row_splits, nodes)
    degree = tf.gather(neighbours.row_splits, nodes + 1) - starts
    uniform = tf.random.stateless_uniform([tf.size(nodes), fanout], seed)
    offsets = tf.minimum(tf.cast(uniform * tf.cast(degree, tf.float32)[:, None], tf.int64),
                         tf.maximum(degree - 1, 0)[:, None])  # u · degree < degree, even rounded
    has_neighbours = tf.repeat(degree > 0, fanout)
    positions = tf.boolean_mask(tf.reshape(starts[:, None] + offsets, [-1]), has_neighbours)
    sources = tf.gather(neighbours.flat_values, positions)
    targets = tf.boolean_mask(tf.repeat(nodes, fanout), has_neighbours)
    return targets, sources


def sampled_batches(graph, nodes, preprocess_tf, *, batch_size, fanouts=(10, 10), seed=0,
                    shuffle=True, replicas=1):
    """The ``tf.data.Dataset`` of sampled subgraphs around ``nodes`` (module docstring).

    ``graph`` is a ``Graph`` of ``pipelines.graph.datasets`` (CSR ``a`` and ``x``, one-hot
    ``y``); ``nodes`` the seed node indices (e.g. the training nodes). With ``shuffle`` the
    seeds are shuffled and the neighbours drawn anew on each pass; without, every pass is the
    same (for validation), so the batches are kept in memory after the first pass (a new
    iterator over this pipeline costs more than a few batches). ``preprocess_tf`` is the
    model's in-graph adjacency preprocessing.
    """
    neighbours = _ragged_rows(sp.csr_matrix(graph.a))
    x = sp.csr_matrix(graph.x, dtype=np.float32)
    feature_columns, feature_values = _ragged_rows(x), _ragged_rows(x, values=True)
    labels = tf.constant(graph.y, tf.float32)
    n_features = x.shape[1]

    def subgraph(seeds, draw_seed):
        targets, sources = [], []
        frontier = seeds
        for hop, fanout in enumerate(fanouts):
            hop_targets, hop_sources = _draw_neighbours(
                neighbours, frontier, fanout, draw_seed + tf.constant([0, hop], tf.int64))
            targets.append(hop_targets)
            sources.append(hop_sources)
            frontier = tf.unique(hop_sources).y
        batch = tf.size(seeds, out_type=tf.int64)
        # Unique node ids in order of first appearance: the seeds are local nodes 0..batch-1.
        ids = tf.concat([seeds, *targets, *sources], axis=0)
        sampled, local = tf.unique(ids, out_idx=tf.int64)
        n_sampled = tf.size(sampled, out_type=tf.int64)
        n_edges = tf.size(ids, out_type=tf.int64) - batch
        edges = tf.reshape(local[batch:], [2, n_edges // 2])
        adjacency = preprocess_tf(undirected_adjacency(tf.transpose(edges), n_sampled))
        columns, values = tf.gather(feature_columns, sampled), tf.gather(feature_values, sampled)
        features = tf.SparseTensor(
            tf.stack([columns.value_rowids(), columns.flat_values], axis=1), values.flat_values,
            tf.stack([n_sampled, n_features]),
        )
        weights = tf.concat([tf.fill([batch], 1.0 / tf.cast(batch * replicas, tf.float32)),
                             tf.zeros([n_sampled - batch])], axis=0)
        return (features, adjacency), tf.gather(labels, sampled), weights

    seeds = tf.data.Dataset.from_tensor_slices(np.asarray(nodes, np.int64))
    if shuffle:
        seeds = seeds.shuffle(len(nodes), seed=seed, reshuffle_each_iteration=True)
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=shuffle).map(
        lambda draw: tf.stack([draw, tf.constant(seed, tf.int64)]))
    batches = tf.data.Dataset.zip(seeds.batch(batch_size), draws).map(
        subgraph, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return (batches if shuffle else batches.cache()).prefetch(tf.data.AUTOTUNE)
