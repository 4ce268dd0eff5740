"""``sagc weights``: installed weights, or one checkpoint's provenance."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("sagc")


def add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list installed weights or show a checkpoint's provenance")
    p.add_argument("checkpoint", nargs="?", help="path or installed name to describe")
    p.set_defaults(handler=_run_weights)


def _run_weights(args: argparse.Namespace) -> int:
    from sagc.models import load_checkpoint, named_weights

    if args.checkpoint is None:
        installed = named_weights()
        if not installed:
            print("no weights are installed with this copy of sagc")
        for name, path in sorted(installed.items()):
            print(f"{name}\t{path}")
        return 0
    checkpoint = load_checkpoint(args.checkpoint, kind=None)
    print(f"kind: {checkpoint['kind']}")
    print(f"architecture: {checkpoint['arch']}")
    print(f"run-time defaults: {checkpoint.get('runtime', {})}")
    params = sum(t.numel() for t in checkpoint["state_dict"].values())
    print(f"parameters: {params}")
    provenance = checkpoint.get("provenance", {})
    if not isinstance(provenance, dict):
        print(f"provenance: {bounded(provenance)} (not a mapping of fields)")
        return 0
    for key, value in list(provenance.items())[:MAX_FIELDS]:
        print(f"{key[:80] if isinstance(key, str) else bounded(key, limit=80)}: {bounded(value)}")
    if len(provenance) > MAX_FIELDS:
        print(f"... {len(provenance) - MAX_FIELDS} more fields")
    return 0


MAX_FIELDS = 100
MAX_DEPTH = 8


def bounded(value: object, *, limit: int = 2000) -> str:
    """``value`` as text of at most ``limit`` characters, nested at most :data:`MAX_DEPTH` deep:
    a checkpoint's provenance is data from a file, and shared references can make a small file
    describe an exponentially large structure."""
    parts: list[str] = []
    room = [limit]

    def emit(text: str) -> bool:
        if room[0] <= 0:
            return False
        parts.append(text[: room[0]])
        room[0] -= len(text)
        return room[0] > 0

    def walk(item: object, depth: int) -> bool:
        if isinstance(item, dict):
            if depth >= MAX_DEPTH:
                return emit("{...}")
            if not emit("{"):
                return False
            for index, (key, inner) in enumerate(item.items()):
                if (
                    (index and not emit(", "))
                    or not walk(key, depth + 1)
                    or not emit(": ")
                    or not walk(inner, depth + 1)
                ):
                    return False
            return emit("}")
        if isinstance(item, (list, tuple, set)):
            if depth >= MAX_DEPTH:
                return emit("[...]")
            if not emit("["):
                return False
            for index, inner in enumerate(item):
                if (index and not emit(", ")) or not walk(inner, depth + 1):
                    return False
            return emit("]")
        try:
            text = repr(item[:limit]) if isinstance(item, str) and depth else str(item)[:limit]
        except ValueError:  # an integer of more digits than Python will print
            text = f"<{type(item).__name__} too long to show>"
        return emit(text)

    walk(value, 0)
    text = "".join(parts)
    return text if room[0] > 0 else text[: max(0, limit - 3)] + "..."
