"""Telling people: the notification policy, desktop notification channels and per-event commands.

Imports ``domain``, ``storage`` and ``engine`` (its events); no Qt."""
