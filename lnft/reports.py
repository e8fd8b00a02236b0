"""Batch execution of the notebooks (papermill) into rendered reports (nbconvert) with an index page.

``reports/<profile>/<notebook>.ipynb`` (executed), ``<notebook>.html`` and ``index.html``, which says
when, with which profile, model, package versions and git commit the reports were made, and how long
each notebook took. A failing notebook is marked failed; the others still run.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import os
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field

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
    parameters: dict = field(default_factory=dict)  # the command line's overrides this notebook received


def available_notebooks(notebooks_dir: str) -> list[str]:
    if not os.path.isdir(notebooks_dir):
        raise LnftError(f"notebooks directory {notebooks_dir!r} does not exist")
    return sorted(f[:-6] for f in os.listdir(notebooks_dir) if f.endswith(".ipynb") and f[:2].isdigit())


def run_reports(profile: str = "quick", names: list[str] | None = None, out: str = "reports",
                notebooks_dir: str = "notebooks", runs_dir: str = "runs", kernel: str = KERNEL,
                log=print, parameters: dict | None = None) -> list[NotebookReport]:
    """``parameters``: overrides (papermill parameters: model, data, data_dir, tasks, seeds, any other
    name) given to every notebook that has that parameter; checked before any notebook starts."""
    from .profiles import PROFILES

    if profile not in PROFILES:
        raise LnftError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    known = available_notebooks(notebooks_dir)
    names = names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LnftError(f"unknown notebook(s) {unknown}; allowed: {', '.join(known)}")
    parameters = dict(parameters or {})
    per_notebook = plan_parameters(profile, names, notebooks_dir, parameters)
    target = os.path.abspath(os.path.join(out, profile))
    check_out(out, target)
    os.makedirs(target, exist_ok=True)
    runs_dir = os.path.abspath(runs_dir)
    reports = []
    for name in names:
        log(f"[lnft reports] {name} (profile {profile}) ...")
        report = execute(name, profile, notebooks_dir, target, runs_dir, kernel, per_notebook[name])
        log(f"[lnft reports] {name}: {report.status} in {report.seconds:.0f} s"
            + (f" — {report.error}" if report.error else ""))
        reports.append(report)
    write_index(target, profile, _merge_previous(target, reports), parameters)
    return reports


RESERVED = ("profile", "runs_dir")  # set by --profile and --runs


def plan_parameters(profile: str, names: list[str], notebooks_dir: str, parameters: dict) -> dict[str, dict]:
    """notebook -> the overrides it takes (those among its papermill parameters). Fails (LnftError) on a
    name no selected notebook has, and on values the notebook's RunConfigs would refuse (task, model,
    data, seeds...), so nothing runs on a bad override."""
    import papermill as pm

    from .config import RunConfig
    from .profiles import PROFILES, resolve

    reserved = sorted(set(parameters) & set(RESERVED))
    if reserved:
        raise LnftError(f"parameter(s) {reserved} are set by --profile/--runs; allowed: any other notebook parameter")
    plan, seen = {}, set()
    for name in names:
        own = set(pm.inspect_notebook(os.path.join(notebooks_dir, name + ".ipynb")))
        plan[name] = {k: v for k, v in parameters.items() if k in own}
        seen |= set(plan[name])
    unknown = sorted(set(parameters) - seen)
    if unknown:
        raise LnftError(f"unknown parameter(s) {unknown} for notebooks {', '.join(names)}; allowed: the notebooks' "
                        "parameters (see their first cells), e.g. model, data, data_dir, tasks, seeds")
    for name in names:
        if not plan[name] or name not in PROFILES[profile]:  # nothing to check, or a notebook lnft has no profile of
            continue
        known = {**PROFILES[profile]["common"], **PROFILES[profile].get(name, {})}
        given = {k: v for k, v in plan[name].items() if k in known or k == "data_dir"}
        P = resolve(name, profile, **given)
        seeds = P.values.get("seeds") or [RunConfig.seed]
        if not isinstance(seeds, (list, tuple)) or not seeds:
            raise LnftError(f"invalid seeds {seeds!r}; allowed: a non-empty list of integers")
        tasks = P.values.get("tasks")
        if not isinstance(tasks, (list, tuple)) or not tasks:
            raise LnftError(f"invalid tasks {tasks!r}; allowed: a non-empty list of task names")
        fields = {f.name for f in dataclasses.fields(RunConfig)} - {"task", "method", "seed", "epochs"}
        extra = {k: P.values[k] for k in given if k in fields}  # e.g. -p lr 0.01: checked as RunConfig checks it
        pairs = {(task, seeds[0]) for task in tasks} | {(tasks[0], seed) for seed in seeds}  # each value once
        for task, seed in sorted(pairs, key=str):
            P.run_config(**{"task": task, "method": "layernorm", "seed": seed, **extra}).validate()
    return plan


def parse_value(text: str):
    """A ``-p NAME VALUE`` value as papermill reads it: a Python or YAML literal (1, 0.5, True, None,
    [0, 1], {"full": 2}), else the string itself."""
    import ast

    import yaml

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


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
        pm.execute_notebook(source, ipynb, parameters={"profile": profile, "runs_dir": runs_dir, "progress": False,
                                                       **(parameters or {})},
                            kernel_name=kernel, cwd=os.path.abspath(notebooks_dir), progress_bar=True,
                            log_output=False, request_save_on_cell_execute=False)
    except Exception as exc:  # a failing notebook is reported, the next one still runs
        status = "failed"
        error = (getattr(exc, "ename", type(exc).__name__) + ": " + str(getattr(exc, "evalue", exc)))[:300]
    seconds = time.perf_counter() - started
    page = None
    if os.path.isfile(ipynb):
        page = render_html(ipynb)
    return NotebookReport(name, status, seconds, os.path.basename(ipynb), page and os.path.basename(page), error,
                          dict(parameters or {}))


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
            "model": display_name((parameters or {}).get("model") or PROFILES[profile]["common"]["model"]),
            **({"overrides": json.dumps(parameters)} if parameters else {}), "git commit": git_commit(),
            **{f"{k} version": v for k, v in versions().items()}}
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
    # overrides of the profile, given to every notebook that has the parameter (checked before any runs)
    p.add_argument("--model", help="'embedded', a hub name or a local model directory")
    p.add_argument("--data", help="'embedded' or a hub dataset name (nyu-mll/glue)")
    p.add_argument("--data-dir", help="a local directory in the GLUE layout (<TASK>/train.tsv, <TASK>/dev.tsv)")
    p.add_argument("--tasks", nargs="+", metavar="TASK")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="any notebook parameter; VALUE is read as a Python/YAML literal, as papermill does")
    p.set_defaults(func=_cmd_reports)


def overrides(args) -> dict:
    """The command line's overrides as notebook parameters (``-p`` first; the named flags win)."""
    out = {name: parse_value(value) for name, value in args.parameter}
    flags = {"model": args.model, "data": args.data, "data_dir": args.data_dir, "tasks": args.tasks,
             "seeds": args.seeds}
    out.update({k: v for k, v in flags.items() if v is not None})
    for key in ("model", "data", "data_dir"):  # notebooks run in their own directory: local paths made absolute
        value = out.get(key)
        if isinstance(value, str) and (key == "data_dir" or os.path.exists(os.path.expanduser(value))):
            out[key] = os.path.abspath(os.path.expanduser(value))
    return out


def _cmd_reports(args) -> int:
    from .store import RunStore

    store = RunStore(args.runs)
    store.check_writable()
    started = time.perf_counter()
    reports = run_reports(args.profile, args.notebooks, args.out, args.notebooks_dir, store.root, args.kernel,
                          parameters=overrides(args))
    failed = [r.name for r in reports if r.status != "ok"]
    print(f"[lnft reports] {len(reports) - len(failed)} ok, {len(failed)} failed in "
          f"{time.perf_counter() - started:.0f} s; index: {os.path.join(args.out, args.profile, 'index.html')}")
    return 1 if failed else 0
