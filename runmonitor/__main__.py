import sys

from runmonitor.cli import main

sys.exit(main())
