"""Graph networks: inspect a graph (Ã, Â, propagation depths, drawing) or train GCN/GAT on it.

Graphs: example (the assignment's 6 nodes A-F), karate (Zachary's karate club), cora,
citeseer, pubmed (Planetoid files from --data-dir, else downloaded), or an edge-list FILE with
optional --features and --labels files.
"""

import argparse
import math
from pathlib import Path

from keras_models.utils.errors import require

GRAPH_HELP = "example, karate, cora, citeseer, pubmed, or the path of an edge-list file"
# The assignment's question for the example graph: after how many layers does C reach E?
DEFAULT_QUESTION = {"example": ("C", "E")}
PRINT_LIMIT = 12  # print whole matrices only for graphs this small


def _graph_arguments(parser):
    parser.add_argument(
        "--graph", "--dataset", dest="graph", required=True, metavar="NAME|FILE", help=GRAPH_HELP
    )
    parser.add_argument("--features", type=Path, help="features file for an edge-list graph")
    parser.add_argument("--labels", type=Path, help="labels file for an edge-list graph")
    parser.add_argument(
        "--data-dir", type=Path, help="folder with the Planetoid ind.<name>.* files"
    )


def add_arguments(parser):
    commands = parser.add_subparsers(dest="graph_command", metavar="ACTION", required=True)

    inspect = commands.add_parser(
        "inspect", help="print Ã, Â and propagation depths; draw the graph",
        description="Print Ã = A + I, Â = D̃^-½ Ã D̃^-½ and propagation depths; draw the graph.",
    )
    _graph_arguments(inspect)
    inspect.add_argument("--source", help="node whose features propagate (default: C on example)")
    inspect.add_argument("--target", help="node they must reach (default: E on example)")
    inspect.add_argument("--draw", type=Path, metavar="PNG", help="draw the graph to this file")
    inspect.add_argument(
        "--color", choices=("label", "depth"), default="label",
        help="colour nodes by label or by depth from --source (default: label)",
    )

    train = commands.add_parser(
        "train", help="train GCN or GAT (full batch, early stopping) and export it",
        description="Train GCN or GAT on a graph over several seeds and export the best model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--model", choices=("gcn", "gat"), required=True)
    _graph_arguments(train)
    train.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed")
    train.add_argument("--epochs", type=int, help="maximum epochs (GCN 200, GAT 1000)")
    train.add_argument("--patience", type=int, help="early-stopping patience (GCN 10, GAT 100)")
    train.add_argument("--learning-rate", type=float, help="Adam's (GCN 0.01, GAT 0.005)")
    train.add_argument("--attention", metavar="NODE", help="GAT: draw this node's attention")
    train.add_argument("--name", help="export name (default: <model>-<graph>)")
    train.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where runs go")
    train.add_argument(
        "--saved-models", type=Path, default=Path("saved_models"), help="where exports go"
    )


def node_index(graph, name, option):
    """The index of node ``name``, or a UsageError naming the option."""
    require(
        name in graph.node_names,
        f"{option} {name!r} is not a node of the graph; use one of "
        f"{', '.join(graph.node_names[:10])}{' ...' if graph.n_nodes > 10 else ''}",
    )
    return graph.node_names.index(name)


def load(args):
    from pipelines.graph.datasets import load_graph

    return load_graph(
        args.graph, data_dir=args.data_dir, features=args.features, labels=args.labels
    )


def _matrix(m):
    import numpy as np

    return np.array2string(m, precision=3, suppress_small=True, max_line_width=120)


def inspect_text(graph, source=None, target=None):
    """Ã, Â and the depth matrix (small graphs), and the depth from ``source`` to ``target``."""
    from keras_models.utils.graph_algebra import (
        normalized_adjacency,
        propagation_depth,
        propagation_depths,
        with_self_loops,
    )

    names = graph.node_names
    lines = [f"{graph.n_nodes} nodes, {graph.a.nnz // 2} edges, nodes {' '.join(names[:12])}"
             f"{' ...' if graph.n_nodes > 12 else ''}"]
    if graph.n_nodes <= PRINT_LIMIT:
        lines += ["", "Ã = A + I:", _matrix(with_self_loops(graph.a)), "",
                  "Â = D̃^-½ Ã D̃^-½:", _matrix(normalized_adjacency(graph.a)), "",
                  "propagation depth [target, source] (GCN layers; -1 = never):",
                  _matrix(propagation_depths(graph.a))]
    if source is not None and target is not None:
        depth = propagation_depth(graph.a, source, target)
        reach = "never" if depth is None else f"{depth} GCN layer(s)"
        lines += ["", f"depth from {names[source]} to {names[target]}: {reach}"]
    return "\n".join(lines)


def run_inspect(args):
    graph = load(args)
    source, target = args.source, args.target
    if source is None and target is None:
        source, target = DEFAULT_QUESTION.get(args.graph, (None, None))
    require((source is None) == (target is None), "give both --source and --target, or neither")
    if args.color == "depth":
        require(source is not None, "--color depth needs --source NODE; add it")
    if args.draw is not None:
        require(args.draw.suffix == ".png", f"--draw {args.draw} must end in .png; rename it")
    source = None if source is None else node_index(graph, source, "--source")
    target = None if target is None else node_index(graph, target, "--target")
    print(inspect_text(graph, source, target))
    if args.draw is not None:
        from trainers.graph.plots import draw_graph

        draw_graph(graph, args.draw, color=args.color, source=source)
        print(f"\ndrawing: {args.draw}")
    return 0


def validate_training(graph, args):
    """Fail early on anything that would stop training half-way."""
    for option in ("epochs", "patience"):
        value = getattr(args, option)
        require(value is None or value >= 1, f"--{option} must be at least 1; got {value}")
    require(args.learning_rate is None or 0 < args.learning_rate < math.inf,
            "--learning-rate must be a finite number > 0")
    require(len(graph.class_names) >= 2,
            f"graph {args.graph!r} needs labels of at least 2 classes to train; pass --labels")
    for split, mask in (("train", graph.mask_tr), ("val", graph.mask_va), ("test", graph.mask_te)):
        require(mask.any(), f"the {split} split of {args.graph!r} is empty; label more nodes")
    require(len(set(args.seeds)) == len(args.seeds), "--seeds repeats a seed; list each once")
    if args.attention is not None:
        require(args.model == "gat", "--attention needs --model gat; drop it or switch model")
        return node_index(graph, args.attention, "--attention")
    return None


def export_name(args):
    return args.name or f"{args.model}-{Path(args.graph).stem}"


def run_train(args):
    graph = load(args)
    attention_node = validate_training(graph, args)
    from trainers.graph.train import DEFAULTS

    settings = {k: getattr(args, k) if getattr(args, k) is not None else v
                for k, v in DEFAULTS[args.model].items()}
    result = train_and_report(
        graph, args.model, args.seeds, settings, name=export_name(args),
        runs_dir=args.runs_dir, saved_models=args.saved_models, attention_node=attention_node,
        config={"model": args.model, "graph": args.graph, "seeds": args.seeds, **settings},
    )
    print(result["summary"])
    print(f"run folder: {result['run_dir']}\nexport: {result['export']}")
    return 0


def train_and_report(graph, model_name, seeds, settings, *, name, runs_dir, saved_models,
                     attention_node=None, config=None):
    """Train, export the best seed, draw attention if asked; write ``summary.md``.

    Returns a dict with ``run_dir``, ``export``, ``summary`` (markdown), ``results`` and
    ``attention`` (PNG path or None).
    """
    import json

    from keras_models.utils.atomic import write_text
    from trainers.core.run_folders import new_run_dir, write_config
    from trainers.graph.train import (
        export_graph_model,
        results_as_dicts,
        summary_markdown,
        train_seeds,
    )

    run_dir = new_run_dir(f"graph-{name}", root=runs_dir)
    write_config(run_dir, config or {"model": model_name, "seeds": list(seeds), **settings})
    model, results = train_seeds(graph, model_name, seeds, run_dir, **settings)
    export = export_graph_model(model, model_name, name, root=saved_models)
    summary = summary_markdown(results)
    summary += f"\nExported the best-validation seed to `{export}`.\n"
    attention = None
    if attention_node is not None:
        from keras_models.models.gat import attention_coefficients
        from trainers.graph.plots import draw_attention

        alpha = attention_coefficients(model, graph.x, graph.a)
        attention = run_dir / f"attention-{graph.node_names[attention_node]}.png"
        draw_attention(graph, alpha, attention_node, attention)
        summary += f"\nAttention of node {graph.node_names[attention_node]}: `{attention}`.\n"
    write_text(run_dir / "summary.md", summary)
    write_text(run_dir / "results.json", json.dumps(results_as_dicts(results), indent=2) + "\n")
    return {"run_dir": run_dir, "export": export, "summary": summary, "results": results,
            "attention": attention}


def run(args):
    if args.graph_command == "inspect":
        return run_inspect(args)
    return run_train(args)


