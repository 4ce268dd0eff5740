"""Media: frames, decoding sources, encoding sinks, still images, queues between threads."""
