"""Telling people: which run events notify, how they read, and where they go.

- :mod:`~runmonitor.notify.policy`: the rules (first check, preferences, no repeats, mute,
  quiet hours, coalescing);
- :mod:`~runmonitor.notify.notification`: what a notification is (outcome, key, urgency);
- :mod:`~runmonitor.notify.wording`: its plain-text title and body;
- :mod:`~runmonitor.notify.channels`: desktop notification channels;
- :mod:`~runmonitor.notify.hooks`: the per-event command.

Imports ``domain``, ``storage`` and ``engine`` (its events); no Qt."""
