"""The ground floor: what every room uses and that imports nothing above it.

errors (the one user-facing error type), atomic (files written under a unique temporary name
and published), outputs (what a run may write), checks (range checks for numbers), timing (step timers),
config (dataclasses ⇄ YAML), synth (ISSR low-light synthesis), extras (optional dependencies).
"""

__version__ = "0.1.0"
