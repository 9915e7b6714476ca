"""The PySide6 desktop interface: widgets, models and dialogs over the Qt-free core."""
