"""Training, export and the command line for seqgraph.

Modules that use TensorFlow import it as ``from keras_models.backend import keras, tf``, so the
command line can parse its arguments (and set TensorFlow's log level) before TensorFlow loads.
"""
