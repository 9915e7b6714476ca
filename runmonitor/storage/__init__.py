"""What RunMonitor keeps between starts: run history, settings and profiles, secrets, paths, logs.

Imports ``domain`` and ``services`` (connection models); no Qt."""
