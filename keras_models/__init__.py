"""seqgraph's Keras layers and models (Keras 2 from tf-keras, chosen in ``backend``)."""

from keras_models.backend import keras, tf  # noqa: F401  (must run before anything touches tf.keras)

from keras_models.layers.lstm_cell import LSTMCell  # noqa: F401
from keras_models.layers.peephole_lstm_cell import PeepholeLSTMCell  # noqa: F401
from keras_models.layers.rnn_factory import CELL_CHOICES, make_rnn  # noqa: F401
from keras_models.version import __version__  # noqa: F401
