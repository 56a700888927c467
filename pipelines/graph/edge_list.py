"""A user's own graph from text files, validated line by line.

- edges (required): one undirected edge ``u v`` per line (names without spaces); ``#`` starts a
  comment; self loops and repeated edges (``v u`` after ``u v`` too) are dropped, with a
  warning that names their lines.
- features (optional): ``node f1 f2 ... fk`` per line, every node exactly once, the same ``k``
  finite numbers each; without it every node gets a one-hot identity feature.
- labels (optional): ``node label`` or ``node label split`` (split = train, val or test); nodes
  may stay unlabelled. Without a split column the labelled nodes are shuffled with seed 0 and
  split 60 / 20 / 20 % into train / val / test. A class with no train node is kept, with a
  warning on stderr: the model cannot predict it.
- A node named in the features or labels file but in no edge is a node without edges (a
  paper nobody cites, a user without friends): it is added to the graph, not rejected.

Fields are separated by whitespace or commas.
"""

import math
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from keras_models.utils.errors import UsageError, warn

SPLITS = ("train", "val", "test")


def _rows(path, what):
    """``(line number, fields)`` of the non-empty, non-comment lines of ``path``."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what} file {path} does not exist; pass the path of an existing file")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            rows.append((number, [f for f in re.split(r"[,\s]+", line) if f]))
    if not rows:
        raise UsageError(f"{what} file {path} has no entries; add one entry per line")
    return rows


def _lines(numbers, limit=5):
    shown = ", ".join(map(str, numbers[:limit])) + (", …" if len(numbers) > limit else "")
    return f"line{'s' if len(numbers) > 1 else ''} {shown}"


def read_edges(path):
    """Node names (in order of appearance) and the edges as index pairs; a warning names the
    dropped self loops and repeated edges with their line numbers."""
    names, index, edges = [], {}, set()
    self_loops, repeats = [], []
    for number, fields in _rows(path, "edge list"):
        if len(fields) != 2:
            raise UsageError(
                f"{path}:{number}: expected 2 node names, found {len(fields)}; "
                "write one edge 'u v' per line"
            )
        for name in fields:
            if name not in index:
                index[name] = len(names)
                names.append(name)
        u, v = (index[f] for f in fields)
        edge = (min(u, v), max(u, v))
        if u == v:
            self_loops.append(number)
        elif edge in edges:
            repeats.append(number)
        else:
            edges.add(edge)
    if not edges:
        raise UsageError(f"edge list {path} has only self loops; add edges between two nodes")
    dropped = [f"{len(found)} {what}{'s' if len(found) > 1 else ''} ({_lines(found)})"
               for what, found in (("self loop", self_loops), ("repeated edge", repeats)) if found]
    if dropped:
        warn(f"{path}: dropped {' and '.join(dropped)}")
    return names, sorted(edges)


def _node(index, name):
    """The index of node ``name``, adding it (a node without edges) if it is new."""
    return index.setdefault(name, len(index))


def read_features(path, index):
    """The feature rows by node name; nodes new to ``index`` (name → position) are added."""
    x, width = {}, None
    for number, fields in _rows(path, "features"):
        node, values = fields[0], fields[1:]
        where = f"{path}:{number}"
        _node(index, node)
        if node in x:
            raise UsageError(f"{where}: node {node!r} appears twice; keep one line per node")
        if width is None:
            width = len(values)
        if not values or len(values) != width:
            raise UsageError(
                f"{where}: expected {width or 'at least 1'} numbers, found {len(values)}; "
                "give every node the same number of features"
            )
        try:
            x[node] = np.array(values, dtype=np.float32)
        except ValueError:
            raise UsageError(f"{where}: features must be numbers; fix {values}") from None
        bad = [v for v, number in zip(values, x[node], strict=True) if not math.isfinite(number)]
        if bad:
            raise UsageError(f"{where}: feature {bad[0]!r} of node {node!r} is not a finite "
                             "number; replace it with a number (e.g. 0, or the column's mean)")
    return x


def feature_matrix(path, rows, index):
    """The ``(n_nodes, k)`` float32 CSR feature matrix of ``rows`` (from ``read_features``
    of ``path``), in the order of ``index``; every node must have a row."""
    missing = [n for n in index if n not in rows]
    if missing:
        raise UsageError(
            f"{path}: no features for {len(missing)} node(s) such as {missing[:5]}; "
            "add a line for every node of the graph"
        )
    return sp.csr_matrix(np.stack([rows[n] for n in index]))


def read_labels(path, index):
    """Class names, the label index of each node (-1 if unlabelled) and the three masks; nodes
    new to ``index`` (name → position) are added."""
    labels, splits = {}, {}
    for number, fields in _rows(path, "labels"):
        where = f"{path}:{number}"
        if len(fields) not in (2, 3):
            raise UsageError(f"{where}: expected 'node label [split]'; fix the line")
        node = fields[0]
        _node(index, node)
        if len(fields) == 3:
            if fields[2] not in SPLITS:
                raise UsageError(f"{where}: split {fields[2]!r} is not one of {', '.join(SPLITS)}")
            splits[node] = fields[2]
        labels[node] = fields[1]
    if splits and len(splits) != len(labels):
        raise UsageError(f"{path}: only some lines have a split; give all a split or none")
    classes = sorted(set(labels.values()))
    y = np.full(len(index), -1)
    for node, label in labels.items():
        y[index[node]] = classes.index(label)
    if not splits:
        nodes = np.random.default_rng(0).permutation(sorted(labels, key=index.get))
        n_train, n_val = round(0.6 * len(nodes)), round(0.2 * len(nodes))
        splits = {n: "train" for n in nodes[:n_train]}
        splits.update({n: "val" for n in nodes[n_train:n_train + n_val]})
        splits.update({n: "test" for n in nodes[n_train + n_val:]})
    masks = {s: np.zeros(len(index), dtype=bool) for s in SPLITS}
    for node, split in splits.items():
        masks[split][index[node]] = True
    untrained = [c for i, c in enumerate(classes) if not (masks["train"] & (y == i)).any()]
    if untrained:
        warn(f"{path}: class(es) {', '.join(map(repr, untrained))} have no node in the train "
             "split; the model cannot learn them, and their val and test nodes count as errors "
             "(label some of their nodes train)")
    return classes, y, masks
