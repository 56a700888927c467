"""Text generation: the vocabulary, samplers and the in-graph generator that is exported."""
