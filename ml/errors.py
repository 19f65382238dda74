"""Errors shared by the pipeline, the bundle machinery and the CLI."""


class PalpiteError(Exception):
    """An error the user can fix; the CLI prints its message on one line."""
