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
    for key, value in checkpoint.get("provenance", {}).items():
        print(f"{key}: {value}")
    return 0
