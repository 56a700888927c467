"""Benchmark: GCN, GAT and GGNN on the Planetoid graphs, seqgraph (spektral) beside PyTorch
Geometric (GCN and GAT).

For each dataset and model, ``--seeds`` runs with the papers' settings (``trainers.graph.train``)
report test accuracy (mean ± std) beside the published figure and whether it reaches it
(``against_published``), seconds per epoch and seconds per run, and the same for the same
models written in PyTorch Geometric (``--pyg``; needs torch and torch_geometric installed by
hand, never a seqgraph dependency). Both get the same data (row-normalised features, public
split) and the same number of threads; the two frameworks alternate seed by seed so machine load
hits both alike. The PyG models follow seqgraph's: GCN without biases, weight decay on the first
layer only, early stopping on validation loss (with the L2 term) with the best weights restored;
GAT with weight decay on kernels and attention vectors (not biases) and its paper's
loss-or-accuracy early stopping (``trainers.graph.early_stopping``). One difference is left: PyG's
``GATConv`` drops out only the attention coefficients, not the transformed features ``W h``
(``features_dropout_rate`` in seqgraph's GAT, as in the paper's code). PyG gets the features as
a dense tensor, as it always has here; seqgraph keeps them sparse (``pipelines.graph``).

For GCN the table also gives the floating-point work of one epoch when everything sparse stays
sparse (``epoch_flops``) and the rate that the measured epoch achieves on it: the gap between
that rate and the machine's matmul rate (``bench/gemm.py``) is overhead, not arithmetic.

    python bench/gnn.py --data-dir /work/shared/data/planetoid --seeds 10 --pyg --write

Prints a markdown table; ``--write`` puts it into docs/benchmarks.md (``bench/results.py``),
``--markdown FILE`` into a file.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Published test accuracy (%) as (mean, std): GCN (Kipf & Welling, no std given), GAT
# (Veličković et al., over 100 runs).
ANCHORS = {
    ("cora", "gcn"): (81.5, None), ("citeseer", "gcn"): (70.3, None),
    ("cora", "gat"): (83.0, 0.7), ("citeseer", "gat"): (72.5, 0.7),
}


def published(dataset, model_name):
    """The published figure as the table prints it (``83.0 ± 0.7``), empty when there is none."""
    anchor = ANCHORS.get((dataset, model_name))
    if anchor is None:
        return ""
    mean, std = anchor
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def against_published(dataset, model_name, accuracies):
    """``met`` when the mean test accuracy (%) over the seeds reaches the published band, the
    published mean less its std (the mean itself where no std was published): a result inside
    the published ± std, or above it, reproduces the paper; ``missed`` otherwise; empty without
    a published figure."""
    anchor = ANCHORS.get((dataset, model_name))
    if anchor is None:
        return ""
    mean, std = anchor
    return "met" if np.mean(accuracies) >= mean - (std or 0.0) - 1e-9 else "missed"


def pyg_run(graph, model_name, seed, *, learning_rate, epochs, patience, **_full_batch_only):
    """The same model, data and early stopping in PyTorch Geometric; returns (acc, epochs, s)."""
    import torch
    import torch.nn.functional as F
    from torch_geometric.nn import GATConv, GCNConv

    torch.manual_seed(seed)
    x = torch.tensor(graph.x.toarray())
    rows, cols = graph.a.nonzero()
    edge_index = torch.tensor(np.stack([rows, cols]), dtype=torch.long)
    y = torch.tensor(graph.y.argmax(axis=1))
    masks = [torch.tensor(m) for m in (graph.mask_tr, graph.mask_va, graph.mask_te)]
    n_features, n_classes = graph.x.shape[1], graph.y.shape[1]

    if model_name == "gcn":
        convs = torch.nn.ModuleList([
            GCNConv(n_features, 16, bias=False), GCNConv(16, n_classes, bias=False),
        ])
        dropout, act = 0.5, F.relu
        groups = [{"params": convs[0].parameters(), "weight_decay": 5e-4},
                  {"params": convs[1].parameters(), "weight_decay": 0.0}]
    else:
        convs = torch.nn.ModuleList([
            GATConv(n_features, 8, heads=8, dropout=0.6),
            GATConv(64, n_classes, heads=1, concat=False, dropout=0.6),
        ])
        dropout, act = 0.6, F.elu
        decayed = [p for name, p in convs.named_parameters() if not name.endswith("bias")]
        biases = [p for name, p in convs.named_parameters() if name.endswith("bias")]
        groups = [{"params": decayed, "weight_decay": 5e-4},
                  {"params": biases, "weight_decay": 0.0}]
    optimizer = torch.optim.Adam(groups, lr=learning_rate)

    def forward(training):
        h = F.dropout(x, dropout, training)
        h = act(convs[0](h, edge_index))
        h = F.dropout(h, dropout, training)
        return convs[1](h, edge_index)

    def l2_term():  # tkipf/gcn's validation loss includes the weight decay, as Keras' val_loss
        with torch.no_grad():
            return sum(0.5 * g["weight_decay"] * float(sum((p ** 2).sum() for p in g["params"]))
                       for g in optimizer.param_groups if g["weight_decay"])

    state = lambda: {k: v.clone() for k, v in convs.state_dict().items()}  # noqa: E731
    best_loss, best_acc, best_state, waited, epoch = float("inf"), -1.0, state(), 0, 0
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):  # noqa: B007  (epoch is reported after the loop)
        convs.train()
        optimizer.zero_grad()
        F.cross_entropy(forward(True)[masks[0]], y[masks[0]]).backward()
        optimizer.step()
        convs.eval()
        with torch.no_grad():
            out = forward(False)[masks[1]]
            val_ce = float(F.cross_entropy(out, y[masks[1]]))
            val_acc = float((out.argmax(dim=1) == y[masks[1]]).float().mean())
        if model_name == "gcn":  # Keras EarlyStopping(val_loss, restore_best_weights=True)
            val_loss = val_ce + l2_term()
            improved = val_loss < best_loss
            if improved:
                best_loss, best_state = val_loss, state()
        else:  # trainers.graph.early_stopping.LossOrAccuracyStopping (PetarV-/GAT)
            lower, higher = val_ce <= best_loss, val_acc >= best_acc
            improved = lower or higher
            if lower and higher:
                best_state = state()
            best_loss, best_acc = min(val_ce, best_loss), max(val_acc, best_acc)
        if improved:
            waited = 0
        else:
            waited += 1
            if waited >= patience:
                break
    seconds = time.perf_counter() - start
    convs.load_state_dict(best_state)
    convs.eval()
    with torch.no_grad():
        predicted = forward(False).argmax(dim=1)
    accuracy = float((predicted[masks[2]] == y[masks[2]]).float().mean())
    return accuracy, epoch, seconds


def epoch_flops(graph, hidden=16):
    """Multiply-adds × 2 of one full-batch GCN epoch with sparse X and Â: the training step
    (forward, and a backward pass of twice its work, less ``∂L/∂X``, which is not needed) and
    the validation forward pass.

    Forward: ``X W₀`` (2 · nnz(X) · h), ``Â (X W₀)`` (2 · nnz(Â) · h), ``H W₁`` (2 · n · h · c),
    ``Â (H W₁)`` (2 · nnz(Â) · c).
    """
    from keras_models.utils.graph_algebra import normalized_adjacency

    n, classes = graph.n_nodes, graph.n_labels
    first_product = 2 * graph.x.nnz * hidden
    forward = (first_product + 2 * normalized_adjacency(graph.a).nnz * (hidden + classes)
               + 2 * n * hidden * classes)
    return 3 * forward - first_product + forward


def summarise(rows):
    """``mean ± std`` of accuracy (%), s/epoch and s/run over the seeds of one setting."""
    acc = 100 * np.array([r[0] for r in rows])
    per_epoch = np.array([r[2] / r[1] for r in rows])
    per_run = np.array([r[2] for r in rows])
    return (f"{acc.mean():.1f} ± {acc.std():.1f}", f"{per_epoch.mean():.3f}",
            f"{per_run.mean():.1f}", f"{np.mean([r[1] for r in rows]):.0f}")


def planetoid_parser(description, models):
    """The flags of the Planetoid benchmarks (this one and ``bench/links.py``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/planetoid"))
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"])
    parser.add_argument("--models", nargs="+", default=list(models), choices=models)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pyg", action="store_true", help="also run PyTorch Geometric")
    return parser


def main():
    parser = planetoid_parser(__doc__.split("\n\n")[0], ["gcn", "gat", "ggnn"])
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--write", action="store_true",
                        help="replace this result in docs/benchmarks.md")
    args = parser.parse_args()
    from bench.results import load_average, provenance, write_result

    load_at_start = load_average()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_models.backend import tf

    from pipelines.graph.datasets import load_graph
    from trainers.graph.config import DEFAULTS
    from trainers.graph.train import fit_one

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if args.pyg:
        import torch

        torch.set_num_threads(args.threads)

    table = [
        "| dataset | model | framework | test acc (%) | published | reached | s/epoch | s/run "
        "| epochs |",
        "|---|---|---|---:|---:|---|---:|---:|---:|",
    ]
    notes = []
    for dataset in args.datasets:
        graph = load_graph(dataset, data_dir=args.data_dir)
        for model_name in args.models:
            ours, theirs = [], []
            for seed in range(args.seeds):
                with tempfile.TemporaryDirectory() as run_dir:
                    _, r = fit_one(graph, model_name, seed, run_dir, **DEFAULTS[model_name])
                ours.append((r.test_accuracy, r.epochs, r.seconds))
                line = (f"{dataset} {model_name} seed {seed}: seqgraph {r.test_accuracy:.3f} "
                        f"({r.epochs} epochs, {r.seconds:.1f} s)")
                if args.pyg and model_name != "ggnn":  # PyG's side: GCN and GAT only
                    theirs.append(pyg_run(graph, model_name, seed, **DEFAULTS[model_name]))
                    line += f", PyG {theirs[-1][0]:.3f} ({theirs[-1][1]} epochs, " \
                            f"{theirs[-1][2]:.1f} s)"
                print(line, flush=True)
            for framework, rows in (("seqgraph (spektral)", ours), ("PyTorch Geometric", theirs)):
                if rows:
                    acc, per_epoch, per_run, n_epochs = summarise(rows)
                    reached = against_published(dataset, model_name, [100 * r[0] for r in rows])
                    table.append(f"| {dataset} | {model_name.upper()} | {framework} | {acc} "
                                 f"| {published(dataset, model_name)} | {reached} | {per_epoch} "
                                 f"| {per_run} | {n_epochs} |")
            print("\n".join(table[-2 if theirs else -1:]), flush=True)
            ours_per_epoch = float(summarise(ours)[1])
            if theirs:
                notes.append(f"- {dataset} {model_name.upper()}: seqgraph's epoch takes "
                             f"{ours_per_epoch / float(summarise(theirs)[1]):.2f}× PyG's.")
            if model_name == "gcn":
                flops = epoch_flops(graph)
                notes.append(f"- {dataset} GCN: an epoch is {flops / 1e6:.1f} MFLOP of sparse "
                             f"work; at {ours_per_epoch:.3f} s that is "
                             f"{flops / ours_per_epoch / 1e9:.2f} GFLOP/s.")
    text = "\n".join([
        f"{args.threads} thread(s) per framework, {args.seeds} seed(s).", "", *table, "",
        *notes,
    ])
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.write:
        write_result("Graph networks", "gnn", f"{provenance(load_at_start)}\n\n{text}")


if __name__ == "__main__":
    main()
