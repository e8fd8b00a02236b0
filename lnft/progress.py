"""Progress bars: tqdm's auto flavour (a widget in JupyterLab, text in a terminal), switchable off."""
from __future__ import annotations

import os


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs):
    from tqdm.auto import tqdm

    disabled = not enabled or os.environ.get("LNFT_PROGRESS", "1") == "0"
    return tqdm(iterable, disable=disabled, dynamic_ncols=True, leave=False, **kwargs)
