"""Streaming: frame sources, encoder sinks, and the source → enhancer → sink pipeline."""
