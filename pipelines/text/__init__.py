"""Text corpora: reading files and TFDS datasets, and the (input, target) windows."""
