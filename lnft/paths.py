"""Output directories checked before any work: a run store (``--out``/``--runs``) or a reports folder.

``os.path.exists`` says False both for a path to create and for a symbolic link that leads nowhere (a loop,
a missing target), and ``os.access`` says yes to root for places that refuse every write (``/proc``): so
the first would fail later with ``FileExistsError`` or errno 40, the second with a traceback, after work
started. These checks find both up front.
"""
from __future__ import annotations

import os
import shutil
import tempfile

from .errors import LnftError


def dead_link(path: str) -> str | None:
    """The first component of ``path`` that is a symbolic link leading nowhere (a loop or a missing
    target), or None."""
    probe = os.path.abspath(os.path.expanduser(str(path)))
    while not os.path.exists(probe):
        if os.path.lexists(probe):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            return None
        probe = parent
    return None


def check_dir_path(path: str, what: str) -> None:
    """A directory, or a path where one can be made: not a file, no dead symbolic link on the way."""
    link = dead_link(path)
    if link is not None:
        where = "" if link == os.path.abspath(os.path.expanduser(str(path))) else f" ({link!r} on its way)"
        raise LnftError(f"{what} {str(path)!r}{where} is a symbolic link that leads nowhere (a loop or a missing "
                        "target); allowed: a directory (or a path to create)")


def check_writable_dir(path: str, what: str) -> None:
    """Fail before any work unless a directory can be made and written at ``path``: probes by making (then
    removing) a temporary directory in it, or in its nearest existing parent."""
    check_dir_path(path, what)
    probe = os.path.abspath(os.path.expanduser(str(path)))
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise LnftError(f"{what} {str(path)!r} is not writable: {probe!r} is not a directory; allowed: a "
                        "writable directory (or a path to create)")
    try:
        made = tempfile.mkdtemp(prefix=".lnft-probe-", dir=probe)
    except OSError as exc:
        raise LnftError(f"{what} {str(path)!r} is not writable ({exc.strerror or exc} in {probe!r}); allowed: a "
                        "writable directory (or a path to create)") from None
    shutil.rmtree(made, ignore_errors=True)
