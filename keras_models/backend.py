"""The one place seqgraph chooses its Keras: Keras 2 from the ``tf-keras`` package.

spektral 1.3.1 imports ``tensorflow.keras`` and fails under Keras 3, and two Kerases in one
process cannot share layers, so every seqgraph module imports ``keras`` and ``tf`` from here.

TensorFlow reads ``TF_USE_LEGACY_KERAS`` when it is first imported (to route
``from tensorflow.keras import ...``) and again when ``tf.keras`` is first touched. If the user
imported TensorFlow before seqgraph, the variable is set too late for the first, so the routing
is repaired here; if ``tf.keras`` was already resolved to Keras 3, that cannot be undone and a
clear ImportError says what to do.
"""

import importlib
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_TENSORFLOW_CAME_FIRST = "tensorflow" in sys.modules

import tensorflow as tf
import tf_keras as keras

_FIX = (
    "import seqgraph's packages (or set TF_USE_LEGACY_KERAS=1) before the first use of tf.keras"
)


def _route_tensorflow_keras_to_tf_keras():
    """Make ``tf.keras`` and ``import tensorflow.keras`` resolve to tf-keras after the fact."""
    loader = tf.__dict__.get("keras")
    if getattr(loader, "_tfll_initialized", False) and loader._tfll_keras_version != "tf_keras":
        raise ImportError(f"tf.keras was already resolved to Keras 3; {_FIX}.")
    resolved = sys.modules.get("tensorflow.keras")
    if resolved is not None and not resolved.__name__.startswith("tf_keras"):
        raise ImportError(f"tensorflow.keras was already imported as Keras 3; {_FIX}.")
    legacy_api = importlib.import_module("tf_keras.api._v2.keras")
    legacy_dir = os.path.dirname(os.path.dirname(legacy_api.__file__))
    tf.__path__[:] = [legacy_dir] + [p for p in tf.__path__ if p != legacy_dir]


if _TENSORFLOW_CAME_FIRST:
    _route_tensorflow_keras_to_tf_keras()

if tf.keras.layers.Layer is not keras.layers.Layer:
    raise ImportError(f"tf.keras is Keras 3, not tf-keras; {_FIX}.")

__all__ = ["keras", "tf"]
