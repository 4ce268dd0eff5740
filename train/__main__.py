"""``python -m sagc.train KIND ...`` (what torchrun launches) = ``sagc train KIND ...``."""

import sys

from sagc.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
