"""Checkpoints installed with the package (``<name>.pt``) and their model cards."""
