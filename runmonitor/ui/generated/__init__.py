"""Generated code, never edited by hand: ``packaging/make_icons.py`` writes it."""
