"""The vocabulary every other part speaks: run status, run models, errors, redaction, text.

Imports nothing else of RunMonitor's, and no Qt."""
