"""Graph networks: inspect a graph (Ã, Â, propagation depths, drawing), train GCN/GAT/GGNN node
classifiers or GAE/VGAE link predictors on it.

Graphs: example (the assignment's 6 nodes A-F), karate (Zachary's karate club), cora,
citeseer, pubmed (Planetoid files from --data-dir, else downloaded), sbm:N (a generated graph of
N nodes), or an edge-list FILE with optional --features and --labels files.
"""

import argparse
import math
from pathlib import Path

from keras_models.utils.errors import require
from trainers.core.grids import refuse_repeats

TASKS = {"nodes": ("gcn", "gat", "ggnn"), "links": ("gae", "vgae")}
GRAPH_HELP = ("example, karate, cora, citeseer, pubmed, sbm:N (a generated graph of N nodes), "
              "or the path of an edge-list file")
# The assignment's question for the example graph: after how many layers does C reach E?
DEFAULT_QUESTION = {"example": ("C", "E")}


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
    from trainers.core.config_flags import add_flags
    from trainers.core.distribute import add_strategy_argument
    from trainers.graph.config import GraphTrainingConfig

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
        "train", help="train GCN, GAT, GGNN (nodes) or GAE, VGAE (links) and export it",
        description="Train a node classifier or a link predictor on a graph over several seeds "
                    "and export the best model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--task", choices=TASKS, default="nodes",
                       help="node classification or link prediction")
    train.add_argument("--model", choices=[m for models in TASKS.values() for m in models],
                       required=True, help="nodes: gcn, gat, ggnn; links: gae, vgae")
    _graph_arguments(train)
    train.add_argument("--encoder", choices=("gcn", "ggnn"),
                       help="links: the encoder of gae/vgae; gcn if not given")
    train.add_argument("--reconstruction", choices=("all-pairs", "sampled"),
                       help="links: loss over all node pairs (the paper's; used if not given) "
                            "or over the edges and as many sampled non-edges")
    train.add_argument("--raw-features", action=argparse.BooleanOptionalAction,
                       help="cora, citeseer, pubmed: the files' 0/1 features (as the VGAE "
                            "paper's code), or row-normalised ones; if not given, raw for vgae "
                            "and row-normalised for the other models")
    train.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed")
    add_flags(train, GraphTrainingConfig, defaults=False)
    add_strategy_argument(train)
    train.add_argument("--attention", metavar="NODE", help="GAT: draw this node's attention")
    train.add_argument("--name", help="export name (default: <model>-<graph>)")
    train.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where runs go")
    train.add_argument(
        "--saved-models", type=Path, default=Path("saved_models"), help="where exports go"
    )


def load(args):
    from pipelines.graph.datasets import load_graph
    from trainers.graph.config import raw_features

    return load_graph(
        args.graph, data_dir=args.data_dir, features=args.features, labels=args.labels,
        raw_features=raw_features(getattr(args, "model", None),
                                  getattr(args, "raw_features", None)),
    )


def run_inspect(args):
    from trainers.graph.inspect import inspect_text, node_index

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


def validate_task(args):
    """The flags that belong to the other task, before any data is read."""
    require(args.model in TASKS[args.task],
            f"--model {args.model} is for --task "
            f"{next(t for t, models in TASKS.items() if args.model in models)}; --task "
            f"{args.task} trains {' or '.join(TASKS[args.task])}")
    if args.task == "nodes":
        for option in ("encoder", "reconstruction"):
            require(getattr(args, option) is None, f"--{option} goes with --task links; drop it")
    else:
        for option in ("labels", "attention", "batch_size", "fanouts"):
            require(getattr(args, option) is None, f"--{option.replace('_', '-')} goes with "
                    "--task nodes; drop it for link prediction")
        require(args.strategy == "default", f"--strategy {args.strategy} goes with --task nodes "
                "(link prediction trains on one device); drop it")


def validate_training(graph, args):
    """Fail early on anything that would stop training half-way."""
    for option in ("epochs", "patience"):
        value = getattr(args, option)
        require(value is None or value >= 1, f"--{option} must be at least 1; got {value}")
    require(args.batch_size is None or args.batch_size >= 0,
            f"--batch-size must be 0 (full batch) or more; got {args.batch_size}")
    if args.fanouts is not None:
        from trainers.graph.config import fanout_list

        args.fanouts = fanout_list(args.fanouts)
    require(args.strategy == "default" or args.batch_size,
            f"--strategy {args.strategy} trains on sampled batches; add --batch-size, e.g. 512")
    require(args.learning_rate is None or 0 < args.learning_rate < math.inf,
            "--learning-rate must be a finite number > 0")
    refuse_repeats({"--seeds": args.seeds})  # a repeated seed would count one run twice
    if args.task == "links":
        return None
    require(len(graph.class_names) >= 2,
            f"graph {args.graph!r} needs labels of at least 2 classes to train; pass --labels")
    for split, mask in (("train", graph.mask_tr), ("val", graph.mask_va), ("test", graph.mask_te)):
        require(mask.any(), f"the {split} split of {args.graph!r} is empty; label more nodes")
    if args.attention is not None:
        require(args.model == "gat", "--attention needs --model gat; drop it or switch model")
        from trainers.graph.inspect import node_index

        return node_index(graph, args.attention, "--attention")
    return None


def export_name(args):
    encoder = f"-{args.encoder}" if args.encoder not in (None, "gcn") else ""
    return args.name or f"{args.model}{encoder}-{Path(args.graph).stem.replace(':', '-')}"


def run_links(args, graph):
    """``--task links``: split the edges (refused when too few), train, report, export."""
    from pipelines.graph.edge_split import split_edges
    from trainers.graph.config import LINK_DEFAULTS
    from trainers.graph.links import train_and_report_links

    split_edges(graph.a)  # the split's own checks, before a run folder exists
    settings = {k: getattr(args, k) if getattr(args, k) is not None else v
                for k, v in LINK_DEFAULTS.items()}
    settings["encoder"] = args.encoder or "gcn"
    result = train_and_report_links(
        graph, args.model, args.seeds, settings, name=export_name(args),
        runs_dir=args.runs_dir, saved_models=args.saved_models,
        config={"task": "links", "model": args.model, "graph": args.graph, "seeds": args.seeds,
                **settings},
    )
    print(result["summary"])
    print(f"run folder: {result['run_dir']}\nROC curves: {result['roc']}\n"
          f"export: {result['export']}")
    return 0


def run_train(args):
    from trainers.core.preflight import check_output_folders

    validate_task(args)
    check_output_folders({"--runs-dir": args.runs_dir, "--saved-models": args.saved_models})
    graph = load(args)  # after the check: loading may download a dataset
    attention_node = validate_training(graph, args)
    if args.task == "links":
        return run_links(args, graph)
    from trainers.core.distribute import make_strategy, output_dirs
    from trainers.graph.config import DEFAULTS
    from trainers.graph.train import train_and_report

    settings = {k: getattr(args, k) if getattr(args, k) is not None else v
                for k, v in DEFAULTS[args.model].items()}
    strategy = make_strategy(args.strategy, deterministic=args.deterministic)
    with output_dirs(strategy, args.runs_dir, args.saved_models) as (runs_dir, saved_models):
        result = train_and_report(
            graph, args.model, args.seeds, settings, name=export_name(args),
            runs_dir=runs_dir, saved_models=saved_models, attention_node=attention_node,
            config={"model": args.model, "graph": args.graph, "seeds": args.seeds, **settings},
            strategy=strategy,
        )
    print(result["summary"])
    print(f"run folder: {result['run_dir']}\nexport: {result['export']}")
    return 0


def run(args):
    if args.graph_command == "inspect":
        return run_inspect(args)
    return run_train(args)


