"""What every benchmark module shares: the repository on ``sys.path``, quiet lnft, one log line format."""
from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("LNFT_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # on sys.path: run.py puts it there

STEP_METHODS = ["full", "layernorm", "bitfit", "lora", "head"]

_START = time.perf_counter()


def log(*args):
    print(f"[{time.perf_counter() - _START:6.1f} s]", *args, file=sys.stderr, flush=True)
