"""Command line: a thin client of the REST API plus local commands that need no controller."""
