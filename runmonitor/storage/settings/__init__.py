"""Preferences and connection profiles: the models and the versioned JSON file that keeps them.

- :mod:`~runmonitor.storage.settings.model`: the models (profiles, preferences) and profile checks;
- :mod:`~runmonitor.storage.settings.store`: loading, recovering and saving ``settings.json``;
- :mod:`~runmonitor.storage.settings.migrations`: old schema versions to the current one;
- :mod:`~runmonitor.storage.settings.transfer`: export and import of profiles;
- :mod:`~runmonitor.storage.settings.files`: atomic, private, secret-free file writing;
- :mod:`~runmonitor.storage.settings.problems`: validation errors as readable lines;
- :mod:`~runmonitor.storage.settings.errors`: what they raise.
"""
