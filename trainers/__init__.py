"""Training, export and the ``seqgraph`` command line: ``core`` plus one subpackage per capability.

Modules that use TensorFlow import it as ``from keras_models.backend import keras, tf``, so the
command line can parse its arguments (and set TensorFlow's log level) before TensorFlow loads.
"""
