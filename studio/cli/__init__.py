"""The ``studio`` command; each sub-command lives in its own module here and is found automatically."""
