"""One module per method, found by the registry; shared blocks live in ``blocks`` and ``losses``."""
