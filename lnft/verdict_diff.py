"""Which verdicts changed between two reports (issue 37: "the verdicts that changed since the previous reference
report, with the reason for each change").

Two reports of the same profile made at different commits record their verdicts in ``<notebook>.verdicts.json``
(``lnft.record``). ``changes`` lines them up by notebook × comparison × task, a comparison's chosen rates left out
of its name ("Fisher top-k (lr 0.03) − …" and "(lr 0.1)" are the same comparison), and says per row whether the
word changed, stayed, is new or is gone, with both estimates and intervals. Why a word changed is the writer's to
say (a protocol change, more seeds, a pool); this module only finds the rows that need a reason.
"""
from __future__ import annotations

import json
import re
import subprocess

import pandas as pd

from .errors import LnftError
from .record import CLAIMS, SUFFIX

KEYS = ["notebook", "comparison", "task"]


def normal(comparison: str) -> str:
    """A comparison's name without its chosen rates or margin label."""
    text = re.sub(r"\s*\(lr [^)]*\)", "", str(comparison))
    return re.sub(r"\s+", " ", re.sub(r"\s*\(±[^)]*\)", "", text)).strip()


def _read(text: str, where: str) -> list[dict]:
    try:
        return list(json.loads(text).get("verdicts", []))
    except (ValueError, AttributeError) as exc:
        raise LnftError(f"unreadable verdicts file {where}: {exc}; allowed: a *.verdicts.json lnft.record wrote") from exc


def load(source: str) -> pd.DataFrame:
    """The verdicts of a reports folder (``reports/standard``) or of one at a git revision
    (``f33e26d:reports/standard``): one row per notebook × comparison × task."""
    rows = []
    for notebook in CLAIMS:
        path = f"{source}/{notebook}{SUFFIX}"
        if ":" in source and not source.startswith("/"):
            got = subprocess.run(["git", "show", path], capture_output=True, text=True)
            if got.returncode != 0:
                continue
            text = got.stdout
        else:
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
        for v in _read(text, path):
            rows.append({"notebook": notebook, "comparison": normal(v.get("comparison", "")),
                         "task": str(v.get("task", "")), "verdict": v.get("verdict"), "estimate": v.get("estimate"),
                         "lo": v.get("lo"), "hi": v.get("hi"), "bound": v.get("bound"), "seeds": v.get("seeds")})
    if not rows:
        raise LnftError(f"no recorded verdicts in {source!r}; allowed: a reports folder, or REV:folder in this git "
                        f"checkout, holding *{SUFFIX}")
    frame = pd.DataFrame(rows)
    return frame.drop_duplicates(KEYS, keep="last").reset_index(drop=True)


def changes(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Every notebook × comparison × task of either report: ``status`` changed / same / new / gone, with the old and
    new word, estimate, interval and seeds."""
    merged = old.merge(new, on=KEYS, how="outer", suffixes=(" before", " now"), indicator=True)
    status = merged["_merge"].map({"left_only": "gone", "right_only": "new", "both": "both"}).astype(str)
    same = merged["verdict before"] == merged["verdict now"]
    merged["status"] = status.where(status != "both", same.map({True: "same", False: "changed"}))
    order = {"changed": 0, "new": 1, "gone": 2, "same": 3}
    merged = merged.drop(columns="_merge").sort_values(KEYS, key=lambda c: c, kind="stable")
    merged = merged.sort_values("status", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
    first = ["status", *KEYS, "verdict before", "verdict now"]
    return merged[first + [c for c in merged.columns if c not in first]]
