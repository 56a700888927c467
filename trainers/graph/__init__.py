"""`seqgraph graph`: inspect graphs, train and export GCN/GAT node classifiers."""
