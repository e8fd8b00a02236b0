"""A forest plot of a reports folder's recorded verdicts, beside the README's tables (issue 37.4).

Why: a table cell gives a word, an estimate and an interval; a reader comparing twenty of them wants to see at a
glance which intervals clear 0 and the margin and which are wide. One panel per claim (its own scale: claim 1 is
a ratio, claims 2 and 3 differences in points), one row per comparison × task, the estimate as a dot and its
interval as a line (at the level the verdict used), 0 (or 1×) solid, ± the row's margin dashed, the word and a †
at the right. Read from the ``*.verdicts.json`` the notebooks recorded (``lnft.record``), never recomputed.
"""
from __future__ import annotations

import os

from .record import FOREST as FILE
COLOURS = {"better": "#176d24", "largest": "#176d24", "worse": "#b00000", "not largest": "#b00000",
           "equivalent": "#1a4f9c", "non-inferior": "#1a4f9c"}


def _colour(word: str) -> str:
    for key, colour in COLOURS.items():
        if str(word).startswith(key):
            return colour
    return "#8a6d00"  # inconclusive, needs >= 2 seeds


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def rows(folder: str) -> list[tuple[str, list[dict]]]:
    """(claim title, plottable verdicts) per recorded notebook and scale (ratios and points apart: claim 1's
    change ratios and its revert test in points), in order; a verdict is plottable with an estimate and both
    interval ends."""
    from .record import CLAIMS, read

    out = []
    for number, name in enumerate(sorted(CLAIMS), 1):
        record = read(folder, name)
        if record is None:
            continue
        kept = [v for v in record["verdicts"] if all(_number(v.get(k)) for k in ("estimate", "lo", "hi"))]
        for unit in dict.fromkeys(v.get("unit") == "×" for v in kept):  # a panel per scale: ratios, points
            out.append((f"Claim {number}", [v for v in kept if (v.get("unit") == "×") == unit]))
    return out


def _label(v: dict, width: int = 64) -> str:
    text = f"{v.get('task', '')}: {v.get('comparison', '')}"
    return text if len(text) <= width else text[:width - 1] + "…"


def figure(folder: str):
    """The forest plot, or None when the folder recorded nothing plottable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = rows(folder)
    if not panels:
        return None
    heights = [len(v) + 1.5 for _, v in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 0.32 * sum(heights) + 0.6),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (title, verdicts) in zip(axes[:, 0], panels):
        ratio = verdicts[0].get("unit") == "×"
        ys = list(range(len(verdicts)))[::-1]
        for y, v in zip(ys, verdicts):
            colour = _colour(v.get("verdict", ""))
            ax.plot([v["lo"], v["hi"]], [y, y], color=colour, lw=2)
            ax.plot([v["estimate"]], [y], "o", color=colour, ms=5)
            m = v.get("margin")
            if _number(m) and not ratio:
                ax.plot([-m, -m], [y - 0.4, y + 0.4], color="#888", lw=1, ls="--")
                ax.plot([m, m], [y - 0.4, y + 0.4], color="#888", lw=1, ls="--")
        ax.axvline(1.0 if ratio else 0.0, color="#222", lw=1)
        ax.set_yticks(ys)
        ax.set_yticklabels([_label(v) for v in verdicts], fontsize=7)
        right = ax.secondary_yaxis("right")
        right.set_yticks(ys)
        right.set_yticklabels([f"{v.get('verdict', '')}{' †' if v.get('flagged') else ''}" for v in verdicts],
                              fontsize=7)
        ax.set_ylim(-0.7, len(verdicts) - 0.3)
        ax.set_title(title + (" (ratio, ×; 1 = as large as the largest other)" if ratio else
                              " (difference, points; dashed: ± the margin)"), fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", color="#eee")
    fig.tight_layout()
    return fig


def save(folder: str) -> str | None:
    """Write ``<folder>/verdicts.png`` (removed when nothing is plottable); its path, or None."""
    import matplotlib.pyplot as plt

    path = os.path.join(folder, FILE)
    fig = figure(folder)
    if fig is None:
        if os.path.exists(path):
            os.remove(path)
        return None
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path
