"""Run in a fresh interpreter by test_secrets.py: what ``open_secret_store("keyring")`` picks here.

Prints one JSON object: the default keyring backend's class, the probe's verdict, and the
store and notices ``open_secret_store`` returns. A fresh process is needed because
python-keyring chooses its default backend once per process, from the environment.
"""

from __future__ import annotations

import json
import sys

import keyring

from runmonitor.storage.paths import app_paths
from runmonitor.storage.secrets import open_secret_store, probe_keyring


def main() -> int:
    default = keyring.get_keyring()
    status = probe_keyring()
    store, notices = open_secret_store("keyring", app_paths())
    report = {
        "default_backend": f"{type(default).__module__}.{type(default).__qualname__}",
        "usable": status.usable,
        "reason": status.reason,
        "store": type(store).__name__,
        "persistent": store.persistent,
        "warning": store.warning,
        "notices": notices,
    }
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
