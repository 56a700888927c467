"""Export SavedModels to ``saved_models/<name>/<version>/``, the layout TensorFlow Serving reads.

Versions are integers; each export takes the next one. The SavedModel is written to a hidden
temporary folder beside the versions and renamed into place, so a crash never leaves a
half-written version that Serving would try to load, and two processes exporting the same model
at once (``seqgraph memory --jobs``) each get a version of their own.
"""

import errno
import os
from pathlib import Path

from keras_models.backend import keras, tf

from keras_models.utils.atomic import scratch_folder

SAVED_MODELS_ROOT = Path("saved_models")


def next_version(model_dir):
    """The next integer version under ``model_dir`` (1 when there is none)."""
    model_dir = Path(model_dir)
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(obj, name, *, signatures, root=SAVED_MODELS_ROOT):
    """Write ``obj`` (a Keras model or a ``tf.Module``) as the next version of ``name``, with the
    explicit ``signatures`` (``{name: concrete function}``, from ``keras_models/serving/``).

    Returns the version folder. Keras models keep their Keras metadata, so both
    ``keras.models.load_model`` and ``tf.saved_model.load`` can read them.
    """
    model_dir = Path(root) / name
    with scratch_folder(model_dir, "export") as scratch:
        if isinstance(obj, keras.Model):
            obj.save(str(scratch / "model"), save_format="tf", signatures=signatures)
        else:
            tf.saved_model.save(obj, str(scratch / "model"), signatures=signatures)
        while True:  # another process may take the version between the look and the rename
            final = model_dir / str(next_version(model_dir))
            try:
                os.rename(scratch / "model", final)
                return final
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
