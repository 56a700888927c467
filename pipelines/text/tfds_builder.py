"""``local_text``: a TensorFlow Datasets builder for your own ``.txt`` files, never the network.

Put UTF-8 ``.txt`` files in the manual folder (by default ``<data_dir>/downloads/manual/``, or
pass ``manual_dir``); each file becomes one example ``{"name": file name, "text": contents}`` of
the ``train`` split (in TFDS's own deterministic order), like ``tiny_shakespeare``'s example.
Files are decoded by ``corpus.read_text_file`` (strict UTF-8, byte-order mark dropped).
Importing this module registers the builder, so ``tfds.load("local_text")`` and
``seqgraph text train --tfds local_text`` serve the files like any other dataset. Nothing is
downloaded: the builder has no URLs and TFDS's GCS look-ups are off (``try_download_gcs``
false). The prepared copy is cached under ``data_dir/local_text/``; delete it after changing
the files.
"""

from pathlib import Path

import keras_models.backend  # noqa: F401  (tf-keras before TFDS touches tf.keras)

import tensorflow_datasets as tfds

from keras_models.utils.errors import UsageError
from pipelines.text.corpus import read_text_file


class LocalText(tfds.core.GeneratorBasedBuilder):
    """Local UTF-8 text files as a TFDS dataset (manual folder, no downloads)."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put the UTF-8 .txt files of your corpus in the manual folder."

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__.split("\n\n")[0],
            features=tfds.features.FeaturesDict(
                {"name": tfds.features.Text(), "text": tfds.features.Text()}
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(Path(dl_manager.manual_dir))}

    def _generate_examples(self, folder):
        files = sorted(folder.glob("*.txt"))
        if not files:
            raise UsageError(f"manual folder {folder} holds no .txt files; put your text there")
        for path in files:
            yield path.name, {"name": path.name, "text": read_text_file(path)}


def prepare_local_text(manual_dir, data_dir=None):
    """Build (offline) and return the ``local_text`` builder for the files in ``manual_dir``."""
    builder = LocalText(data_dir=data_dir)
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir), try_download_gcs=False)
    builder.download_and_prepare(download_config=config)
    return builder
