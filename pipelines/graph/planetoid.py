"""The Planetoid citation graphs (Cora, CiteSeer, PubMed) from an explicit folder.

spektral's ``Citation`` reads ``~/spektral/datasets/Citation/<name>/`` and has no path
argument; after a failed download it leaves an empty folder there that later runs mistake for
the data. ``LocalCitation`` reads the standard files ``ind.<name>.{x,y,tx,ty,allx,ally,graph,
test.index}`` from the folder you give it and checks they are all there first. Downloads (only
when no folder is given) go to a hidden sibling folder that is renamed into place when complete.
Split: the public Planetoid split (Cora 140 train / 500 validation / 1000 test).
"""

from pathlib import Path

from keras_models.backend import tf  # noqa: F401

from spektral.datasets import Citation
from spektral.datasets.utils import DATASET_FOLDER

from keras_models.utils.atomic import atomic_path
from keras_models.utils.errors import UsageError

NAMES = tuple(Citation.available_datasets())
DEFAULT_ROOT = Path(DATASET_FOLDER) / "Citation"


def planetoid_files(name):
    """The file names of one Planetoid dataset, in spektral's order."""
    return [f"ind.{name}.{suffix}" for suffix in Citation.suffixes]


def missing_files(folder, name):
    """The Planetoid files of ``name`` that are not in ``folder``."""
    return [f for f in planetoid_files(name) if not (Path(folder) / f).is_file()]


def require_complete(folder, name):
    """Raise one UsageError naming every missing file of ``name`` in ``folder``."""
    missing = missing_files(folder, name)
    if missing:
        state = "does not exist" if not Path(folder).is_dir() else "is incomplete"
        raise UsageError(
            f"Planetoid folder {folder} {state}: missing {', '.join(missing)}; "
            f"put the {name} files there (from https://github.com/kimiyoung/planetoid/"
            "tree/master/data) or pass --data-dir with a complete folder"
        )


class LocalCitation(Citation):
    """spektral's ``Citation`` reading from ``folder`` (checked complete before reading)."""

    def __init__(self, name, folder, **kwargs):
        self.folder = Path(folder)
        require_complete(self.folder, name)
        super().__init__(name, **kwargs)

    @property
    def path(self):
        return str(self.folder)


class _DownloadInto(Citation):
    """Only spektral's ``download``, aimed at a given folder."""

    def __init__(self, name, folder):  # no reading: only a download target
        self.name, self.folder = name, folder

    @property
    def path(self):
        return str(self.folder)


def download(name, folder):
    """Download the files of ``name`` into ``folder`` atomically (all of them or nothing)."""
    with atomic_path(folder) as tmp:
        try:
            _DownloadInto(name, tmp).download()
        except Exception as error:  # requests' and spektral's errors alike
            raise UsageError(
                f"could not download {name} ({type(error).__name__}: {error}); "
                "check the network or pass --data-dir with the Planetoid files"
            ) from error


def load_citation(name, data_dir=None):
    """The one-graph ``LocalCitation`` dataset of ``name`` from ``data_dir``.

    Without ``data_dir`` the files are read from spektral's folder, downloaded first if that
    folder is missing (an incomplete one is an error, never silently re-used).
    """
    if name not in NAMES:
        raise UsageError(f"unknown Planetoid dataset {name!r}; choose one of {', '.join(NAMES)}")
    if data_dir is None:
        data_dir = DEFAULT_ROOT / name
        if not data_dir.exists():
            download(name, data_dir)
    return LocalCitation(name, data_dir)
