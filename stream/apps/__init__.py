"""Apps: the live preview and its server, the benchmark, live capture, the Ray cluster runner."""
