"""Full-batch node classification with one compiled step per epoch, validation included.

With the whole graph as one batch, an epoch's arithmetic is small (a few MFLOP on Cora once the
features are sparse), and ``model.fit(..., validation_data=...)`` spends more than that around
it: a new iterator for each epoch and a whole ``evaluate()`` (its own iterator, function call
and metric resets) for the validation. ``FullBatchTraining`` runs the training step and the
validation forward pass in one ``tf.function`` call per epoch, over a repeated one-element
dataset, and returns the same logs ``fit`` with ``validation_data`` would
(``loss acc ce val_loss val_acc val_ce``), so Keras' callbacks (early stopping, TensorBoard,
CSV history) work unchanged.
"""

from keras_models.backend import keras, tf


def _weighted_cross_entropy(y, probabilities, weights):
    """``Σ_i w_i · CE(y_i, p_i)``, Keras' categorical cross-entropy summed with weights."""
    return tf.reduce_sum(weights * keras.losses.categorical_crossentropy(y, probabilities))


def _weighted_accuracy(y, probabilities, weights):
    """``Σ_i w_i [argmax p_i = argmax y_i] / Σ_i w_i``."""
    hits = tf.cast(tf.equal(tf.argmax(probabilities, -1), tf.argmax(y, -1)), weights.dtype)
    return tf.reduce_sum(weights * hits) / tf.reduce_sum(weights)


class FullBatchTraining(keras.Model):
    """Train ``classifier`` (``[x, A'] -> probabilities``) on one graph, one step per epoch.

    Data: ``((x, A'), y, train_weights, val_weights)``, repeated; fit with
    ``steps_per_epoch=1``. The weights are ``mask / mask.sum()``, so the summed cross-entropy is
    the mean over the split's nodes; ``loss`` and ``val_loss`` add the classifier's L2 terms
    (``val_loss`` after the step's update, as ``evaluate`` after the epoch would see it).
    """

    def __init__(self, classifier, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier

    def call(self, inputs, training=None):
        return self.classifier(inputs, training=training)

    def _penalty(self):
        return tf.add_n(self.classifier.losses) if self.classifier.losses else 0.0

    def train_step(self, data):
        inputs, y, train_weights, val_weights = data
        with tf.GradientTape() as tape:
            probabilities = self.classifier(inputs, training=True)
            train_ce = _weighted_cross_entropy(y, probabilities, train_weights)
            loss = train_ce + self._penalty()
        self.optimizer.minimize(loss, self.classifier.trainable_variables, tape=tape)
        validation = self.classifier(inputs, training=False)
        val_ce = _weighted_cross_entropy(y, validation, val_weights)
        return {
            "loss": loss, "acc": _weighted_accuracy(y, probabilities, train_weights),
            "ce": train_ce, "val_loss": val_ce + self._penalty(),
            "val_acc": _weighted_accuracy(y, validation, val_weights), "val_ce": val_ce,
        }
