"""Graph training settings, declared once: ``GraphTrainingConfig`` fields generate the
``seqgraph graph train`` flags, and ``DEFAULTS`` holds each paper's values for them."""

import dataclasses

from keras_models.utils.errors import require
from trainers.core.config_flags import flag

DEFAULT_FANOUTS = (10, 10)


def fanout_list(text):
    """``"10,10"`` → ``(10, 10)``: neighbours drawn per node at each hop (one hop per layer)."""
    try:
        fanouts = tuple(int(f) for f in text.split(","))
    except ValueError:
        fanouts = ()
    require(len(fanouts) == 2 and min(fanouts) >= 1,
            f"--fanouts {text} must be two counts >= 1, one per layer, e.g. 10,10")
    return fanouts


@dataclasses.dataclass(frozen=True)
class GraphTrainingConfig:
    """Full-batch training of one node-classification model on one graph."""

    learning_rate: float = flag(help="Adam's learning rate (GCN, GGNN, GAE, VGAE 0.01; GAT 0.005)")
    epochs: int = flag(help="maximum epochs (GCN, GGNN 200, GAT 1000); links: epochs (200)")
    patience: int = flag(help="early-stopping patience (GCN 10, GAT 100); links: keep the "
                              "best-val_auc epoch's weights, stopping after this many epochs "
                              "without a better one (default: the last epoch's, as the paper)")
    batch_size: int = flag(0, help="train on sampled neighbourhoods of this many training nodes "
                                   "per step (0: the whole graph in one step)")
    fanouts: tuple = flag(DEFAULT_FANOUTS, type=str,
                          help="with --batch-size: neighbours drawn per node at each of the two "
                               "hops, e.g. 10,10")


# The papers' settings: GCN lr 0.01, 200 epochs, patience 10; GAT lr 0.005, patience 100.
# GGNN (no paper setting for Cora) trains like the GCN.
DEFAULTS = {
    "gcn": dataclasses.asdict(GraphTrainingConfig(learning_rate=0.01, epochs=200, patience=10)),
    "gat": dataclasses.asdict(GraphTrainingConfig(learning_rate=0.005, epochs=1000, patience=100)),
    "ggnn": dataclasses.asdict(GraphTrainingConfig(learning_rate=0.01, epochs=200, patience=10)),
}

# Link prediction (GAE, VGAE), as Kipf & Welling's code (tkipf/gae): Adam 0.01, 200 epochs, the
# last epoch's weights (``patience`` None; a patience keeps the best-``val_auc`` epoch's,
# ``trainers.graph.links.best_validation_weights``, docs/graphs.md "Model selection"); the
# reconstruction loss over all node pairs (``graph_autoencoder``).
LINK_DEFAULTS = {"learning_rate": 0.01, "epochs": 200, "patience": None,
                 "reconstruction": "all-pairs"}

# The models that read the Planetoid features as the files give them (0/1), as tkipf/gae does;
# the others row-normalise them (``--raw-features`` / ``--no-raw-features`` override). The VGAE
# needs the raw features (with row-normalised ones its μ starts far below the noise σ ⊙ ε); the
# GAE ranks better row-normalised (docs/graphs.md, "Link prediction").
RAW_FEATURES_MODELS = ("vgae",)


def raw_features(model, flag=None):
    """Whether ``model`` reads the Planetoid features raw: ``flag`` when given, else its
    default (``RAW_FEATURES_MODELS``)."""
    return model in RAW_FEATURES_MODELS if flag is None else flag
