"""Is the Hugging Face hub usable? Asked before any work, so an offline machine gets one clear line
at once instead of minutes of retries."""
from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline_reason() -> str | None:
    """None when the hub looks reachable, else why not."""
    for flag in OFFLINE_FLAGS:
        if os.environ.get(flag, "").lower() in ("1", "true", "yes", "on"):
            return f"offline ({flag}={os.environ[flag]})"
    return _unreachable()


@functools.lru_cache(maxsize=1)
def _unreachable() -> str | None:
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        return f"offline ({host} unreachable: {exc.strerror or exc})"
    return None


def cached_model(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)
