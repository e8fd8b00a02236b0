"""One error type for bad input: the CLI prints its message as one line and exits with status 2."""


class LnftError(ValueError):
    """A user-facing problem with the input (bad value, missing file, no network...)."""
