"""Graphs: built-in and Planetoid datasets, and users' edge-list files."""
