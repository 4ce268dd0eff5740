"""Unsupervised SAGC trainer, the semantic-prior trainer, their data and losses."""
