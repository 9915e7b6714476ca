"""The entry point PyInstaller freezes: the same ``main`` as the ``runmonitor`` command."""

import sys

from runmonitor.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
