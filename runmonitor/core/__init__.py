"""Qt-free core: status vocabulary, run models, errors (and later polling, history, settings)."""
