"""Graph training settings, declared once: ``GraphTrainingConfig`` fields generate the
``seqgraph graph train`` flags, and ``DEFAULTS`` holds each paper's values for them."""

import dataclasses

from trainers.core.config_flags import flag


@dataclasses.dataclass(frozen=True)
class GraphTrainingConfig:
    """Full-batch training of one node-classification model on one graph."""

    learning_rate: float = flag(help="Adam's learning rate (GCN 0.01, GAT 0.005)")
    epochs: int = flag(help="maximum epochs (GCN 200, GAT 1000)")
    patience: int = flag(help="early-stopping patience (GCN 10, GAT 100)")


# The papers' settings: GCN lr 0.01, 200 epochs, patience 10; GAT lr 0.005, patience 100.
DEFAULTS = {
    "gcn": dataclasses.asdict(GraphTrainingConfig(learning_rate=0.01, epochs=200, patience=10)),
    "gat": dataclasses.asdict(GraphTrainingConfig(learning_rate=0.005, epochs=1000, patience=100)),
}
