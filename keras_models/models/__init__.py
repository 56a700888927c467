"""Models built from the layers: memory classifier, character language model, GCN and GAT."""
