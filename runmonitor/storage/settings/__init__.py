"""Preferences and connection profiles: the models and the versioned JSON file that keeps them."""
