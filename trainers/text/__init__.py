"""`seqgraph text`: train a character-level language model, sample from its export."""
