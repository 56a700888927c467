"""Serving signature of the sequence-memory classifier (``build_memory_model``).

``serving_default(tokens: int32[batch, time]) -> {"probabilities": float32[batch, classes]}``:
tokens are the task's ids with 0 as left padding; row ``b`` of ``probabilities`` sums to one.
"""

from keras_models.backend import tf


def serving_signatures(model):
    """``{"serving_default": tf.function with its input signature}`` of the Keras memory
    classifier ``model``. It is traced while the SavedModel is written, so ``FusedLSTM`` takes
    standard TensorFlow ops, not the compiled loop."""

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="tokens")])
    def serve(tokens):
        return {"probabilities": model(tokens, training=False)}

    return {"serving_default": serve}
