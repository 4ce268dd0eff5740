"""Run: pipelines and their threads, jobs (one input, its outputs, its resets), the Ray manifest."""
