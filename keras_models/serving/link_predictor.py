"""Serving signatures of the link predictors (GAE, VGAE): pair scores and recommendations.

Both take the graph: node features ``x`` float32 ``(n_nodes, n_features)`` and ``edges`` int64
``(n_edges, 2)``, each undirected edge once in either direction (both directions also work).
The encoder's adjacency (``Â`` or the 0/1 pattern) is built from the edge list inside the graph
as a ``tf.SparseTensor``; no ``n × n`` array is formed.

- ``score_pairs(x, edges, pairs: int64[k, 2]) -> {"scores": float32[k]}``: ``σ(z_i · z_j)``,
  the probability that ``i`` and ``j`` are linked.
- ``recommend(x, edges, nodes: int64[q], k: int32[]) -> {"neighbours": int64[q, k'],
  "scores": float32[q, k']}``: each query node's ``k' = min(k, n_nodes)`` most likely new
  neighbours, best first, never the node itself nor an existing neighbour in ``edges``. When a
  node has fewer than ``k'`` candidates, the rest of its row is ``-1`` with score 0.

A node id outside ``[0, n_nodes)`` in ``edges``, ``pairs`` or ``nodes``, or ``k < 1``, fails with
``InvalidArgumentError`` naming the ids and the valid range.
"""

from keras_models.backend import tf


def _checked(ids, n, what):
    """``ids`` once an assertion that each is in ``[0, n)`` has run; names the bad ones."""
    valid = (ids >= 0) & (ids < n)
    message = tf.strings.format(
        what + " {} do(es) not exist: the graph has {} nodes, ids 0 to {}",
        (tf.boolean_mask(ids, tf.logical_not(valid)), n, n - 1), summarize=10,
    )
    check = tf.debugging.Assert(tf.reduce_all(valid), [message])
    with tf.control_dependencies([check]):
        return tf.identity(ids)


class LinkPredictor(tf.Module):
    """The export: a trained encoder (``[x, adjacency] -> μ`` or ``-> [μ, log σ]``) with the
    adjacency it expects from an edge list, ``adjacency_from_edges(edges, n) -> SparseTensor``."""

    def __init__(self, encoder, adjacency_from_edges, *, variational):
        super().__init__(name="link_predictor")
        self.encoder = encoder
        self.adjacency_from_edges = adjacency_from_edges
        self.variational = variational

    def embeddings(self, x, edges):
        """Node embeddings ``z = μ``, ``(n_nodes, latent)``, of the graph ``(x, edges)``."""
        n = tf.shape(x, out_type=tf.int64)[0]
        edges = _checked(edges, n, "edge endpoint(s)")
        outputs = self.encoder([tf.sparse.from_dense(x), self.adjacency_from_edges(edges, n)],
                               training=False)
        return outputs[0] if self.variational else outputs

    def signatures(self):
        """``{"score_pairs": ..., "recommend": ...}`` concrete functions for the export."""
        x_spec = tf.TensorSpec([None, self.encoder.inputs[0].shape[-1]], tf.float32, name="x")
        edges_spec = tf.TensorSpec([None, 2], tf.int64, name="edges")

        @tf.function(input_signature=[x_spec, edges_spec,
                                      tf.TensorSpec([None, 2], tf.int64, name="pairs")])
        def score_pairs(x, edges, pairs):
            z = self.embeddings(x, edges)
            pairs = _checked(pairs, tf.shape(z, out_type=tf.int64)[0], "pair node(s)")
            logits = tf.reduce_sum(tf.gather(z, pairs[:, 0]) * tf.gather(z, pairs[:, 1]), -1)
            return {"scores": tf.sigmoid(logits)}

        @tf.function(input_signature=[x_spec, edges_spec,
                                      tf.TensorSpec([None], tf.int64, name="nodes"),
                                      tf.TensorSpec([], tf.int32, name="k")])
        def recommend(x, edges, nodes, k):
            z = self.embeddings(x, edges)
            n = tf.shape(z, out_type=tf.int64)[0]
            nodes = _checked(nodes, n, "query node(s)")
            check_k = tf.debugging.Assert(
                k >= 1, [tf.strings.format("k must be at least 1, got {}", k)]
            )
            logits = tf.matmul(tf.gather(z, nodes), z, transpose_b=True)  # (q, n)
            # Each query's existing neighbours: the edge list grouped by source node.
            both_ways = tf.concat([edges, tf.reverse(edges, axis=[1])], axis=0)
            order = tf.argsort(both_ways[:, 0])
            neighbours = tf.RaggedTensor.from_value_rowids(
                tf.gather(both_ways[:, 1], order), tf.gather(both_ways[:, 0], order), nrows=n
            )
            known = tf.gather(neighbours, nodes)
            queries = tf.range(tf.size(nodes, tf.int64))
            excluded = tf.concat([
                tf.stack([known.value_rowids(), known.values], axis=1),
                tf.stack([queries, nodes], axis=1),  # the node itself
            ], axis=0)
            logits = tf.tensor_scatter_nd_update(
                logits, excluded, tf.fill(tf.shape(excluded)[:1], -float("inf"))
            )
            with tf.control_dependencies([check_k]):
                best = tf.math.top_k(logits, tf.minimum(k, tf.cast(n, tf.int32)))
            found = tf.math.is_finite(best.values)
            return {
                "neighbours": tf.where(found, tf.cast(best.indices, tf.int64), -1),
                "scores": tf.where(found, tf.sigmoid(best.values), 0.0),
            }

        return {"score_pairs": score_pairs.get_concrete_function(),
                "recommend": recommend.get_concrete_function()}
