"""``python -m benchmark``: the ``repbench`` command, e.g. ``torchrun --nproc_per_node=2 -m benchmark eval ...``."""

import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
