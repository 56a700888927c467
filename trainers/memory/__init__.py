"""`seqgraph memory`: grids of cells x lengths x seeds on a memory task."""
