"""Serving signatures of the node classifiers (GCN, GAT): a whole graph in, every node's class
probabilities out, with no ``n × n`` dense array anywhere.

- ``serve_sparse(x_indices: int64[nonzeros, 2], x_values: float32[nonzeros], n_nodes: int64[],
  edges: int64[edges, 2])``: features as the components of a sparse matrix
  ``(n_nodes, features)``; the form for large graphs.
- ``serve_edges(x: float32[nodes, features], edges: int64[edges, 2])``: dense features.
- ``serving_default(x: float32[nodes, features], a: float32[nodes, nodes])``: a dense adjacency,
  kept for the clients of earlier exports; only for graphs small enough to send ``a``.

All return ``{"probabilities": float32[nodes, classes]}``. ``edges`` lists each undirected edge
once in either direction, or both (repeats and self loops are ignored). New nodes need no
retraining: send the graph with their feature rows and edges (the models are inductive).
"""

from keras_models.backend import tf

from keras_models.utils.sparse_tensors import undirected_adjacency


def serving_signatures(model, preprocess_tf):
    """The three signatures above for the Keras node classifier ``model`` ``[x, A'] -> p``
    (both inputs sparse), whose adjacency input is ``preprocess_tf(A)`` (GCN's Â, GAT's
    pattern). The model's preprocessing runs inside the graph, so clients send the raw graph.
    """
    n_features = model.inputs[0].shape[-1]

    def predict(x, a):
        return {"probabilities": model([x, preprocess_tf(a)], training=False)}

    edges_spec = tf.TensorSpec([None, 2], tf.int64, name="edges")
    x_spec = tf.TensorSpec([None, n_features], tf.float32, name="x")

    @tf.function(input_signature=[
        tf.TensorSpec([None, 2], tf.int64, name="x_indices"),
        tf.TensorSpec([None], tf.float32, name="x_values"),
        tf.TensorSpec([], tf.int64, name="n_nodes"), edges_spec,
    ])
    def serve_sparse(x_indices, x_values, n_nodes, edges):
        x = tf.sparse.reorder(tf.SparseTensor(x_indices, x_values, [n_nodes, n_features]))
        return predict(x, undirected_adjacency(edges, n_nodes))

    @tf.function(input_signature=[x_spec, edges_spec])
    def serve_edges(x, edges):
        return predict(tf.sparse.from_dense(x), undirected_adjacency(edges, tf.shape(x)[0]))

    @tf.function(input_signature=[x_spec, tf.TensorSpec([None, None], tf.float32, name="a")])
    def serve(x, a):
        edges = tf.sparse.from_dense(a).indices
        return predict(tf.sparse.from_dense(x), undirected_adjacency(edges, tf.shape(x)[0]))

    return {
        "serving_default": serve.get_concrete_function(),
        "serve_edges": serve_edges.get_concrete_function(),
        "serve_sparse": serve_sparse.get_concrete_function(),
    }
