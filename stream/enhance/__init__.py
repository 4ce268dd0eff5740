"""Enhance: the Stage interface, the CPU, reference and CUDA stages, and the state video carries."""
