"""One seeding function for Python, NumPy and TensorFlow."""

from keras_models.backend import keras, tf


def seed_everything(seed, deterministic=False):
    """Seed ``random``, NumPy and TensorFlow; with ``deterministic`` also make TF ops deterministic.

    Op determinism makes repeated runs on the same machine give identical numbers, at some cost
    in speed; it stays on for the rest of the process.
    """
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()
