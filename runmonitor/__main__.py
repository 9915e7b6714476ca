import sys

from runmonitor.cli.main import main

sys.exit(main())
