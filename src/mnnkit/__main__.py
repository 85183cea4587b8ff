"""``python -m mnnkit``: the same command line as the ``mnnkit`` entry point."""

import sys

from mnnkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
