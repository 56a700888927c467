"""Full-batch node classification with one compiled step per epoch, validation included.

With the whole graph as one batch, an epoch's arithmetic is small (a few MFLOP on Cora once the
features are sparse), and ``model.fit(..., validation_data=...)`` spends more than that around
it: a new iterator for each epoch and a whole ``evaluate()`` (its own iterator, function call
and metric resets) for the validation. ``FullBatchTraining`` runs the training step and the
validation forward pass in one ``tf.function`` call per epoch, over a repeated one-element
dataset, and returns the same logs ``fit`` with ``validation_data`` would
(``loss acc ce val_loss val_acc val_ce``), so Keras' callbacks (early stopping, TensorBoard,
CSV history) work unchanged.

The training step may run on a smaller graph than the validation: the subgraph induced by the
receptive field of the training nodes (``graph_algebra.receptive_field``), on which a model of
that many layers computes the same outputs at the training nodes, hence the same loss and
gradients; the dropouts then draw their masks over that subgraph only. For the GAT on Cora the
field of the 140 training nodes holds 1664 of the 2708 nodes and 65 % of the edges.
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

    Data: ``(train_inputs, train_y, train_weights, (x, A'), y, val_weights)``, repeated; fit
    with ``steps_per_epoch=1``. ``train_inputs`` (``[x, A']`` of the graph or of the training
    nodes' receptive field) with its labels and weights feed the training step, ``(x, A')`` with
    ``y`` and ``val_weights`` the validation. The weights are ``mask / mask.sum()``, so the
    summed cross-entropy is the mean over the split's nodes; ``loss`` and ``val_loss`` add the
    classifier's L2 terms (``val_loss`` after the step's update, as ``evaluate`` after the epoch
    would see it).
    """

    def __init__(self, classifier, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier

    def call(self, inputs, training=None):
        return self.classifier(inputs, training=training)

    def _penalty(self):
        return tf.add_n(self.classifier.losses) if self.classifier.losses else 0.0

    def train_step(self, data):
        train_inputs, train_y, train_weights, inputs, y, val_weights = data
        with tf.GradientTape() as tape:
            probabilities = self.classifier(train_inputs, training=True)
            train_ce = _weighted_cross_entropy(train_y, probabilities, train_weights)
            loss = train_ce + self._penalty()
        self.optimizer.minimize(loss, self.classifier.trainable_variables, tape=tape)
        validation = self.classifier(inputs, training=False)
        val_ce = _weighted_cross_entropy(y, validation, val_weights)
        return {
            "loss": loss, "acc": _weighted_accuracy(train_y, probabilities, train_weights),
            "ce": train_ce, "val_loss": val_ce + self._penalty(),
            "val_acc": _weighted_accuracy(y, validation, val_weights), "val_ce": val_ce,
        }
