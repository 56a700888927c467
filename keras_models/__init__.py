"""seqgraph's Keras layers and models (Keras 2 from tf-keras, chosen in ``backend``).

The names below load on first use, so that ``keras_models.utils`` (errors, atomic writes) can be
imported without TensorFlow, as the command line does before it parses its arguments.
``keras`` and ``tf`` come from ``keras_models.backend``, which must run before anything touches
``tf.keras``.
"""

import importlib

from keras_models.version import __version__  # noqa: F401

_EXPORTS = {
    "keras": "keras_models.backend",
    "tf": "keras_models.backend",
    "LSTMCell": "keras_models.layers.lstm_cell",
    "PeepholeLSTMCell": "keras_models.layers.peephole_lstm_cell",
    "FusedLSTM": "keras_models.layers.fused_lstm",
    "CELL_CHOICES": "keras_models.layers.rnn_factory",
    "make_rnn": "keras_models.layers.rnn_factory",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
