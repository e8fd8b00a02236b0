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
import sys
import time
import urllib.parse
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
                log=print, parameters: dict | None = None) -> list[NotebookReport]:
    """``parameters``: extra notebook parameters (e.g. engine, address), passed to every notebook and
    shown on the index."""
    names, target = check_request(profile, names, out, notebooks_dir)
    os.makedirs(target, exist_ok=True)
    runs_dir = os.path.abspath(runs_dir)
    reports = []
    for name in names:
        log(f"[lnft reports] {name} (profile {profile}) ...")
        report = execute(name, profile, notebooks_dir, target, runs_dir, kernel, parameters)
        log(f"[lnft reports] {name}: {report.status} in {report.seconds:.0f} s"
            + (f" — {report.error}" if report.error else ""))
        reports.append(report)
    write_index(target, profile, _merge_previous(target, reports), parameters)
    return reports


def check_request(profile: str, names: list[str] | None, out: str, notebooks_dir: str) -> tuple[list[str], str]:
    """The notebooks to run and the reports folder, after checking profile, names and --out."""
    from .profiles import PROFILES

    if profile not in PROFILES:
        raise LnftError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    known = available_notebooks(notebooks_dir)
    names = names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LnftError(f"unknown notebook(s) {unknown}; allowed: {', '.join(known)}")
    target = os.path.abspath(os.path.join(out, profile))
    check_out(out, target)
    return names, target


def check_out(out: str, target: str) -> None:
    """Fail before any notebook runs if the reports cannot be written under ``out``."""
    for path in (out, target):
        if os.path.exists(path) and not os.path.isdir(path):
            raise LnftError(f"reports --out {out!r}: {path!r} is a file; allowed: a directory (or a path to create)")
    probe = target
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        raise LnftError(f"reports --out {out!r} is not writable ({probe!r}); allowed: a writable directory")


def execute(name: str, profile: str, notebooks_dir: str, target: str, runs_dir: str, kernel: str,
            parameters: dict | None = None) -> NotebookReport:
    import papermill as pm

    source = os.path.join(notebooks_dir, name + ".ipynb")
    ipynb = os.path.join(target, name + ".ipynb")
    started = time.perf_counter()
    status, error = "ok", ""
    try:
        pm.execute_notebook(source, ipynb, parameters={**(parameters or {}), "profile": profile, "runs_dir": runs_dir,
                                                         "progress": False},
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
    if os.path.lexists(state):
        try:
            with open(state, encoding="utf-8") as fh:
                previous = [NotebookReport(**r) for r in json.load(fh)]
        except Exception as exc:  # noqa: BLE001 — truncated, garbage or foreign: rebuilt from the files
            previous = reports_on_disk(target)
            print(f"lnft: warning: {state} is unreadable ({type(exc).__name__}); rebuilt from the "
                  f"{len(previous)} executed notebook(s) in {target}", file=sys.stderr, flush=True)
    names = {r.name for r in reports}
    merged = sorted([r for r in previous if r.name not in names] + reports, key=lambda r: r.name)
    _write_atomic(state, json.dumps([r.__dict__ for r in merged], indent=1))
    return merged


def reports_on_disk(target: str) -> list[NotebookReport]:
    """Reports recovered from the executed notebooks (papermill records duration and failure in them)."""
    import nbformat

    found = []
    for file in sorted(f for f in os.listdir(target) if f.endswith(".ipynb")):
        try:
            meta = nbformat.read(os.path.join(target, file), as_version=4).metadata.get("papermill", {})
        except Exception:  # noqa: BLE001 — not a notebook: not a report
            continue
        page = file[:-6] + ".html"
        found.append(NotebookReport(file[:-6], "failed" if meta.get("exception") else "ok",
                                    float(meta.get("duration") or 0.0), file,
                                    page if os.path.isfile(os.path.join(target, page)) else None,
                                    "recovered from the executed notebook" if meta.get("exception") else ""))
    return found


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports"],
                               capture_output=True, text=True, timeout=10).stdout.strip()  # outputs don't count
        return (commit + (" (uncommitted changes)" if dirty else "")) if commit else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_index(target: str, profile: str, reports: list[NotebookReport], parameters: dict | None = None) -> str:
    from .models import display_name
    from .profiles import PROFILES
    from .train import versions

    rows = "\n".join(
        f"<tr class='{_attr(r.status)}'><td>{html.escape(r.name)}</td><td>{html.escape(r.status)}</td>"
        f"<td>{r.seconds:.0f}</td><td>{_link(r.html, 'HTML') if r.html else '—'} · {_link(r.ipynb, 'notebook')}"
        f"</td><td>{html.escape(r.error)}</td></tr>" for r in reports)
    info = {"made": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "profile": profile,
            "model": display_name(PROFILES[profile]["common"]["model"]), "git commit": git_commit(),
            **{f"{k} version": v for k, v in versions().items()},
            **({"parameters": json.dumps(parameters)} if parameters else {})}
    facts = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in info.items())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lnft reports — {html.escape(profile)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}} td,th{{padding:.3em .8em;text-align:left}}
tr.failed td{{color:#b00}} table{{border-collapse:collapse}} .runs td{{border-top:1px solid #ddd}}</style></head>
<body><h1>lnft reports — profile <code>{html.escape(profile)}</code></h1>
<p>Companion to <i>LayerNorm: A key component in parameter-efficient fine-tuning</i> (arXiv 2403.20284).</p>
<table>{facts}</table>
<h2>Notebooks</h2>
<table class="runs"><tr><th>notebook</th><th>status</th><th>seconds</th><th>report</th><th>error</th></tr>
{rows}
</table></body></html>
"""
    path = os.path.join(target, "index.html")
    _write_atomic(path, page)
    return path


def _attr(text: str) -> str:
    return html.escape(str(text), quote=True)


def _link(file: str, label: str) -> str:
    """A link to a file next to the index: URL-quoted, then HTML-escaped (a name cannot leave the href)."""
    return f'<a href="{_attr(urllib.parse.quote(file))}">{html.escape(label)}</a>'


def add_cli(sub) -> None:
    p = sub.add_parser("reports", help="execute the notebooks with papermill and render HTML reports")
    p.add_argument("--profile", default="quick", help="smoke, quick, full or paper")
    p.add_argument("--notebooks", nargs="+", metavar="NAME", help="notebook names without .ipynb (default: all)")
    p.add_argument("--out", default="reports", help="reports directory (a folder per profile is made inside)")
    p.add_argument("--notebooks-dir", default="notebooks")
    p.add_argument("--runs", default=None, help="runs directory (default: $LNFT_RUNS or ./runs)")
    p.add_argument("--kernel", default=KERNEL)
    p.add_argument("--engine", default=None, help="local (default: $LNFT_ENGINE or local) or ray (one Ray task per run)")
    p.add_argument("--address", default=None, help="ray: none starts a local Ray; auto, host:port or ray://host:port "
                   "joins a running cluster")
    p.add_argument("--num-cpus", type=float, default=None, help="ray: CPUs per run (default 1)")
    p.add_argument("--num-gpus", type=float, default=None, help="ray: GPUs per run; 0.25 packs four runs on a GPU")
    p.set_defaults(func=_cmd_reports)


def engine_parameters(args) -> dict:
    """Check the engine options before any notebook runs (ray: join or start it now and check that a node
    can hold one run) and return the notebook parameters and environment they become."""
    from .engine import ENV, connect, resolve_engine

    if args.engine is None and args.address is None and args.num_cpus is None and args.num_gpus is None:
        return {}
    cfg = resolve_engine(args.engine, args.address, num_cpus=args.num_cpus, num_gpus=args.num_gpus)
    if cfg.name != "ray":
        if args.num_cpus is not None or args.num_gpus is not None:
            raise LnftError("--num-cpus/--num-gpus are only allowed with --engine ray, not "
                            f"{cfg.name!r}")
        return {"engine": cfg.name}
    connect(cfg)  # a local Ray started here is joined by the notebooks ("auto") and ends with this process
    os.environ[ENV["num_cpus"]], os.environ[ENV["num_gpus"]] = str(cfg.num_cpus), str(cfg.num_gpus)
    return {"engine": "ray", "address": cfg.address or "auto", "num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus}


def _cmd_reports(args) -> int:
    from .store import RunStore

    store = RunStore(args.runs)
    store.check_writable()
    started = time.perf_counter()
    check_request(args.profile, args.notebooks, args.out, args.notebooks_dir)  # before Ray starts
    parameters = engine_parameters(args)
    notebook_parameters = {k: v for k, v in parameters.items() if k in ("engine", "address")}
    reports = run_reports(args.profile, args.notebooks, args.out, args.notebooks_dir, store.root, args.kernel,
                          parameters=notebook_parameters)
    failed = [r.name for r in reports if r.status != "ok"]
    print(f"[lnft reports] {len(reports) - len(failed)} ok, {len(failed)} failed in "
          f"{time.perf_counter() - started:.0f} s; index: {os.path.join(args.out, args.profile, 'index.html')}")
    return 1 if failed else 0
