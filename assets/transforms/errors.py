"""Whole-input errors: the run stops with one line naming the file and column."""


class InputError(Exception):
    """A whole-input error: the run stops with this one line, which names the file and column."""
