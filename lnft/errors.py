"""One error type for bad input: the CLI prints its message as one line and exits with status 2."""


class LnftError(ValueError):
    """A user-facing problem with the input (bad value, missing file, no network...)."""


def short_repr(value, limit: int = 60) -> str:
    """``repr(value)``, cut so that an error line stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"


class RunFailed(RuntimeError):
    """A run that cannot produce a result (e.g. its training loss became NaN): recorded as failed, not stored."""


class RunsFailed(RuntimeError):
    """Some runs of a sweep failed; the others finished and are in the store. ``failures`` says which and why."""

    def __init__(self, message: str, failures=()):
        super().__init__(message)
        self.failures = list(failures)


def error_text(exc: BaseException) -> tuple[str, str]:
    """(one line naming the error, the traceback) of a failed run, as ``.failed/<run id>.json`` holds them."""
    import traceback

    cause = getattr(exc, "cause", None) or exc  # RayTaskError wraps the worker's exception
    text = f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
    return text[:300], "".join(traceback.format_exception(cause))[-4000:]
