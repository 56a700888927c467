"""Pieces every layer of seqgraph shares: errors, atomic writes, graph algebra, sparse tensors."""
