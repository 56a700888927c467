"""Graphs: built-in, Planetoid and generated datasets, users' edge-list files, and sampled
neighbourhoods for mini-batch training."""
