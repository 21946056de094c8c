"""The chaos suite: `python -m tests.chaos` (see __main__.py) and its small pytest form."""
