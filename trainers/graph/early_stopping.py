"""GAT's early stopping (Veličković et al. 2018, as in their code PetarV-/GAT).

Patience on validation loss AND accuracy: the wait resets whenever the loss reaches its lowest
value so far or the accuracy its highest (ties count); training stops after ``patience`` epochs
with neither. The weights kept are those of the last epoch at which both were at their best at
once, restored when training ends. Keras' ``EarlyStopping`` watches one quantity only.
"""

import math

from keras_models.backend import keras


class LossOrAccuracyStopping(keras.callbacks.Callback):
    """Stop after ``patience`` epochs in which neither ``loss`` fell nor ``accuracy`` rose."""

    def __init__(self, loss="val_ce", accuracy="val_acc", patience=100):
        super().__init__()
        self.loss, self.accuracy, self.patience = loss, accuracy, patience

    def on_train_begin(self, logs=None):
        self.best_loss, self.best_accuracy = math.inf, -math.inf
        self.wait, self.best_epoch, self.best_weights = 0, None, None
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        loss, accuracy = logs[self.loss], logs[self.accuracy]
        lower, higher = loss <= self.best_loss, accuracy >= self.best_accuracy
        if not (lower or higher):
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.model.stop_training = True
            return
        if lower and higher:
            self.best_epoch, self.best_weights = epoch, self.model.get_weights()
        self.best_loss = min(loss, self.best_loss)
        self.best_accuracy = max(accuracy, self.best_accuracy)
        self.wait = 0

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
