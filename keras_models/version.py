"""The seqgraph version, read by setup.cfg and `seqgraph --version`."""

__version__ = "0.1.0"
