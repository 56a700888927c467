"""tf.data pipelines and datasets for seqgraph's tasks.

Modules that use TensorFlow import it as ``from keras_models.backend import keras, tf``.
"""
