"""The ``perdure`` command; the entry point is ``perdure.cli.main:main``."""
