"""Serving signatures of the node classifiers (GCN, GAT).

``serving_default(x: float32[nodes, features], a: float32[nodes, nodes])`` and
``serve_edges(x: float32[nodes, features], edges: int64[edges, 2])`` both return
``{"probabilities": float32[nodes, classes]}``; ``edges`` lists each undirected edge once.
"""

from keras_models.backend import tf


def serving_signatures(model, preprocess_tf):
    """``serving_default`` (x, dense adjacency) and ``serve_edges`` (x, edge list) of the Keras
    node classifier ``model``, whose adjacency input is ``preprocess_tf(a)`` (GCN's Â, GAT's Ã).

    Both return ``{"probabilities": (n_nodes, n_classes)}``; the adjacency is the raw one
    (0/1, no self loops needed): the model's preprocessing runs inside the graph.
    """
    x_spec = tf.TensorSpec([None, model.inputs[0].shape[-1]], tf.float32, name="x")

    @tf.function(input_signature=[x_spec, tf.TensorSpec([None, None], tf.float32, name="a")])
    def serve(x, a):
        a_prime = tf.sparse.from_dense(preprocess_tf(a))
        return {"probabilities": model([x, a_prime], training=False)}

    @tf.function(input_signature=[x_spec, tf.TensorSpec([None, 2], tf.int64, name="edges")])
    def serve_edges(x, edges):
        n = tf.shape(x, out_type=tf.int64)[0]
        both_ways = tf.concat([edges, tf.reverse(edges, axis=[1])], axis=0)
        a = tf.scatter_nd(both_ways, tf.ones(tf.shape(both_ways)[:1]), tf.stack([n, n]))
        return serve(x, tf.minimum(a, 1.0))

    return {
        "serving_default": serve.get_concrete_function(),
        "serve_edges": serve_edges.get_concrete_function(),
    }
