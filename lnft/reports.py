"""Batch execution of the notebooks (papermill) into rendered reports (nbconvert) with an index page.

``reports/<profile>/<notebook>.ipynb`` (executed), ``<notebook>.html`` and ``index.html``, which says
when, with which profile, model, package versions and git commit the reports were made, and how long
each notebook took. A failing notebook is marked failed; the others still run.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import os
import subprocess
import time
from dataclasses import dataclass

from .errors import LnftError

KERNEL = "python3"


@dataclass
class NotebookReport:
    name: str
    status: str  # "ok" or "failed"
    seconds: float
    ipynb: str
    html: str | None
    error: str = ""


def available_notebooks(notebooks_dir: str) -> list[str]:
    if not os.path.isdir(notebooks_dir):
        raise LnftError(f"notebooks directory {notebooks_dir!r} does not exist")
    return sorted(f[:-6] for f in os.listdir(notebooks_dir) if f.endswith(".ipynb") and f[:2].isdigit())


def run_reports(profile: str = "quick", names: list[str] | None = None, out: str = "reports",
                notebooks_dir: str = "notebooks", runs_dir: str = "runs", kernel: str = KERNEL,
                log=print) -> list[NotebookReport]:
    from .profiles import PROFILES

    if profile not in PROFILES:
        raise LnftError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    known = available_notebooks(notebooks_dir)
    names = names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LnftError(f"unknown notebook(s) {unknown}; allowed: {', '.join(known)}")
    target = os.path.abspath(os.path.join(out, profile))
    os.makedirs(target, exist_ok=True)
    runs_dir = os.path.abspath(runs_dir)
    reports = []
    for name in names:
        log(f"[lnft reports] {name} (profile {profile}) ...")
        report = execute(name, profile, notebooks_dir, target, runs_dir, kernel)
        log(f"[lnft reports] {name}: {report.status} in {report.seconds:.0f} s"
            + (f" — {report.error}" if report.error else ""))
        reports.append(report)
    write_index(target, profile, _merge_previous(target, reports))
    return reports


def execute(name: str, profile: str, notebooks_dir: str, target: str, runs_dir: str, kernel: str) -> NotebookReport:
    import papermill as pm

    source = os.path.join(notebooks_dir, name + ".ipynb")
    ipynb = os.path.join(target, name + ".ipynb")
    started = time.perf_counter()
    status, error = "ok", ""
    try:
        pm.execute_notebook(source, ipynb, parameters={"profile": profile, "runs_dir": runs_dir, "progress": False},
                            kernel_name=kernel, cwd=os.path.abspath(notebooks_dir), progress_bar=True,
                            log_output=False, request_save_on_cell_execute=False)
    except Exception as exc:  # a failing notebook is reported, the next one still runs
        status = "failed"
        error = (getattr(exc, "ename", type(exc).__name__) + ": " + str(getattr(exc, "evalue", exc)))[:300]
    seconds = time.perf_counter() - started
    page = None
    if os.path.isfile(ipynb):
        page = render_html(ipynb)
    return NotebookReport(name, status, seconds, os.path.basename(ipynb), page and os.path.basename(page), error)


def render_html(ipynb: str) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(ipynb, as_version=4))
    page = ipynb[:-6] + ".html"
    with open(page, "w", encoding="utf-8") as fh:
        fh.write(body)
    return page


def _merge_previous(target: str, reports: list[NotebookReport]) -> list[NotebookReport]:
    """Keep earlier reports of notebooks not re-run this time on the index."""
    state = os.path.join(target, "reports.json")
    previous = []
    if os.path.isfile(state):
        with open(state) as fh:
            previous = [NotebookReport(**r) for r in json.load(fh)]
    names = {r.name for r in reports}
    merged = sorted([r for r in previous if r.name not in names] + reports, key=lambda r: r.name)
    with open(state, "w") as fh:
        json.dump([r.__dict__ for r in merged], fh, indent=1)
    return merged


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports"],
                               capture_output=True, text=True, timeout=10).stdout.strip()  # outputs don't count
        return (commit + (" (uncommitted changes)" if dirty else "")) if commit else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_index(target: str, profile: str, reports: list[NotebookReport]) -> str:
    from .models import display_name
    from .profiles import PROFILES
    from .train import versions

    rows = "\n".join(
        f"<tr class='{r.status}'><td>{html.escape(r.name)}</td><td>{r.status}</td><td>{r.seconds:.0f}</td>"
        f"<td>{f'<a href={chr(34)}{r.html}{chr(34)}>HTML</a>' if r.html else '—'} · "
        f"<a href=\"{r.ipynb}\">notebook</a></td><td>{html.escape(r.error)}</td></tr>" for r in reports)
    info = {"made": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "profile": profile,
            "model": display_name(PROFILES[profile]["common"]["model"]), "git commit": git_commit(),
            **{f"{k} version": v for k, v in versions().items()}}
    facts = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in info.items())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lnft reports — {profile}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}} td,th{{padding:.3em .8em;text-align:left}}
tr.failed td{{color:#b00}} table{{border-collapse:collapse}} .runs td{{border-top:1px solid #ddd}}</style></head>
<body><h1>lnft reports — profile <code>{profile}</code></h1>
<p>Companion to <i>LayerNorm: A key component in parameter-efficient fine-tuning</i> (arXiv 2403.20284).</p>
<table>{facts}</table>
<h2>Notebooks</h2>
<table class="runs"><tr><th>notebook</th><th>status</th><th>seconds</th><th>report</th><th>error</th></tr>
{rows}
</table></body></html>
"""
    path = os.path.join(target, "index.html")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page)
    return path


def add_cli(sub) -> None:
    p = sub.add_parser("reports", help="execute the notebooks with papermill and render HTML reports")
    p.add_argument("--profile", default="quick", help="smoke, quick, full or paper")
    p.add_argument("--notebooks", nargs="+", metavar="NAME", help="notebook names without .ipynb (default: all)")
    p.add_argument("--out", default="reports", help="reports directory (a folder per profile is made inside)")
    p.add_argument("--notebooks-dir", default="notebooks")
    p.add_argument("--runs", default=None, help="runs directory (default: $LNFT_RUNS or ./runs)")
    p.add_argument("--kernel", default=KERNEL)
    p.set_defaults(func=_cmd_reports)


def _cmd_reports(args) -> int:
    from .store import RunStore

    store = RunStore(args.runs)
    store.check_writable()
    started = time.perf_counter()
    reports = run_reports(args.profile, args.notebooks, args.out, args.notebooks_dir, store.root, args.kernel)
    failed = [r.name for r in reports if r.status != "ok"]
    print(f"[lnft reports] {len(reports) - len(failed)} ok, {len(failed)} failed in "
          f"{time.perf_counter() - started:.0f} s; index: {os.path.join(args.out, args.profile, 'index.html')}")
    return 1 if failed else 0
