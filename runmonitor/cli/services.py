"""``runmonitor services``: the supported services and what each can do, from the registry."""

from __future__ import annotations

import argparse
from typing import Any

from runmonitor.cli.output import EXIT_OK, say, say_json
from runmonitor.services import registry


def _cmd_services(args: argparse.Namespace) -> int:
    described = [cls.describe() for cls in registry().values()]
    if args.json_output:
        say_json(described, indent=2)
        return EXIT_OK
    for item in described:
        caps = ", ".join(item["capabilities"]) or "create and follow"
        actions = ", ".join(item["actions"]) or "none"
        say(
            f"{item['key']:<11} {item['name']} ({item['vendor']}); follows a {item['target'].lower()}; "
            f"capabilities: {caps}; actions: {actions}"
        )
    return EXIT_OK


def add_parser(sub: Any) -> None:
    services = sub.add_parser("services", help="list the supported services and what each can do")
    services.add_argument("--json", dest="json_output", action="store_true", help="print JSON")
    services.set_defaults(handler=_cmd_services)
