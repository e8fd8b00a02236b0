"""One error type for bad input: the CLI prints its message as one line and exits with status 2."""


class LnftError(ValueError):
    """A user-facing problem with the input (bad value, missing file, no network...)."""


class RunFailed(RuntimeError):
    """A run that cannot produce a result (e.g. its training loss became NaN): recorded as failed, not stored."""


class RunsFailed(RuntimeError):
    """Some runs of a sweep failed; the others finished and are in the store. ``failures`` says which and why."""

    def __init__(self, message: str, failures=()):
        super().__init__(message)
        self.failures = list(failures)
