"""Batch execution of the notebooks (papermill) into rendered reports (nbconvert) with an index page.

``reports/<profile>/<notebook>.ipynb`` (executed), ``<notebook>.html``, what each notebook recorded
(``<notebook>.verdicts.json`` and its key figure ``<notebook>.png``, see ``lnft.record``) and
``index.html``, which leads with the answers: each claim of the paper with its verdicts per task, the key
figures linking to the reports, then when, with which profile, model, tasks, seeds, package versions and
git commit the reports were made, and how long each notebook took. A failing notebook is marked failed
(and its claim says so); the others still run. Outputs carry no absolute path of the machine: the run
store is passed relative to the notebooks' folder and papermill's recorded paths are cut to names.
"""
from __future__ import annotations

import argparse
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
    commit: str = ""  # git_commit() when the notebook ran (a merged index may hold older ones)
    parameters: dict = field(default_factory=dict)  # the command line's overrides this notebook received
    previous: dict | None = None  # a failed run: the notebook's last good report, still in place (stale)


def available_notebooks(notebooks_dir: str) -> list[str]:
    if not os.path.isdir(notebooks_dir):
        raise LnftError(f"notebooks directory {notebooks_dir!r} does not exist")
    return sorted(f[:-6] for f in os.listdir(notebooks_dir) if f.endswith(".ipynb") and f[:2].isdigit())


def run_reports(profile: str = "quick", names: list[str] | None = None, out: str = "reports",
                notebooks_dir: str = "notebooks", runs_dir: str = "runs", kernel: str = KERNEL,
                log=print, parameters: dict | None = None) -> list[NotebookReport]:
    """``parameters``: notebook parameters from the command line (overrides of the profile such as model,
    data, data_dir, tasks, seeds, any other name; engine, address), given to every notebook that has that
    parameter and checked before any notebook starts; recorded in the run facts."""
    names, target = check_request(profile, names, out, notebooks_dir, kernel)
    parameters = dict(parameters or {})
    per_notebook = plan_parameters(profile, names, notebooks_dir, parameters)
    os.makedirs(target, exist_ok=True)
    runs_dir = os.path.relpath(os.path.abspath(runs_dir), os.path.abspath(notebooks_dir))  # papermill's cwd
    commit = git_commit()
    finish_staged(target)
    before = {r.name: r for r in _read_reports(target) or reports_on_disk(target)}
    facts = run_facts(profile, commit, parameters)
    reports = []
    for name in names:
        log(f"[lnft reports] {name} (profile {profile}) ...")
        started = time.perf_counter()
        try:
            report = execute(name, profile, notebooks_dir, target, runs_dir, kernel, per_notebook[name])
        except KeyboardInterrupt:  # the index says so (the previous good report, stale), then Ctrl-C goes on
            reports.append(NotebookReport(name, "interrupted", time.perf_counter() - started, "", None,
                                          "interrupted (Ctrl-C) before it finished", commit,
                                          dict(per_notebook[name]), _last_good(before.get(name), target)))
            write_index(target, profile, _merge_previous(target, reports, facts), facts)
            raise
        report.commit = commit
        if report.status != "ok":
            report.previous = _last_good(before.get(name), target)
        log(f"[lnft reports] {name}: {report.status} in {report.seconds:.0f} s"
            + (f" — {report.error}" if report.error else ""))
        reports.append(report)
        # after every notebook: an interrupted batch leaves an index that matches the reports in place
        write_index(target, profile, _merge_previous(target, reports, facts), facts)
    return reports


def check_request(profile: str, names: list[str] | None, out: str, notebooks_dir: str,
                  kernel: str | None = None) -> tuple[list[str], str]:
    """The notebooks to run and the reports folder, after checking profile, names, the notebooks folder
    (it must hold a notebook: an empty one would rewrite the index with nothing), the kernel and --out."""
    from .profiles import PROFILES

    if profile not in PROFILES:
        raise LnftError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    known = available_notebooks(notebooks_dir)
    if not known:
        raise LnftError(f"no notebook found in {notebooks_dir!r}; allowed: a directory holding numbered notebooks "
                        "(NN_name.ipynb), e.g. notebooks")
    if kernel is not None:
        check_kernel(kernel)
    names = names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LnftError(f"unknown notebook(s) {unknown}; allowed: {', '.join(known)}")
    target = os.path.abspath(os.path.join(out, profile))
    check_out(out, target)
    return names, target


def check_kernel(kernel: str) -> None:
    """Fail before any notebook runs on a Jupyter kernel name papermill could not start."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    specs = KernelSpecManager()
    try:
        specs.get_kernel_spec(kernel)
    except NoSuchKernel:
        raise LnftError(f"unknown kernel {kernel!r}; allowed: {', '.join(sorted(specs.find_kernel_specs()))} "
                        "(jupyter kernelspec list)") from None


def run_facts(profile: str, commit: str | None = None, parameters: dict | None = None) -> dict:
    """What the index says about the run: when, profile, model, commit (short, and the full hash for
    scripts/readme_results.py), package versions and, if given, the command line's overrides."""
    from .models import display_name, resolve_device, resolve_precision
    from .profiles import PROFILES
    from .train import versions

    given = {**PROFILES[profile]["common"], **(parameters or {})}
    device = given.get("device", "auto")
    facts = {"made": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "profile": profile,
             "model": display_name(given["model"]),
             "device": resolve_device(device).type,  # what "auto" resolved to here, as every run's id records it
             "precision": resolve_precision(given.get("precision", "auto"), device),
             "git commit": commit or git_commit(), "commit hash": _git("rev-parse", "HEAD") or "unknown",
             **{f"{k} version": v for k, v in versions().items()}}
    if parameters:
        facts["parameters"] = parameters
    return facts


RESERVED = ("profile", "runs_dir")  # set by --profile and --runs


def plan_parameters(profile: str, names: list[str], notebooks_dir: str, parameters: dict) -> dict[str, dict]:
    """notebook -> the overrides it takes (those among its papermill parameters). Fails (LnftError) before
    any notebook starts on a name no selected notebook has, on any value ``lnft.profiles.SCHEMA`` refuses
    (type, allowed values, range, empty list), on values that break a notebook's rules
    (``profiles.NOTEBOOK_RULES``), and on values the notebooks' RunConfigs would refuse (task, model,
    data, methods on this model...): ``lnft.experiments.validate``, on the runs the notebook trains. Every
    notebook's resolved parameters are checked, overridden or not."""
    import papermill as pm

    from . import experiments
    from .profiles import PROFILES, check_parameter, resolve

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
    for key, value in parameters.items():  # the one schema: types, allowed values, ranges, empty lists
        check_parameter(key, value)
    for name in names:
        if name not in PROFILES[profile]:  # a notebook lnft has no profile of: its parameters were checked above
            continue
        known = {**PROFILES[profile]["common"], **PROFILES[profile].get(name, {})}
        given = {k: v for k, v in plan[name].items() if k in known or k in ("data_dir", "task_spec")}
        experiments.validate(resolve(name, profile, **given))  # the notebook's rules, then its runs' configs
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
    from .paths import check_writable_dir  # link loops, and places root "may" write but cannot (/proc)
    check_writable_dir(target, f"reports --out {out!r}: folder")


KERNEL_LOG = "kernel.log"  # in a stage: the kernel process's own stderr (kept as <name>.failed.kernel.log)


def _kernel_manager(log: str):
    """A kernel manager whose kernel writes its own stderr (its log, not the cells' output, which papermill
    records in the notebook) to ``log`` rather than the terminal: a kernel shut down mid-cell by Ctrl-C
    prints a ZMQ traceback there, and every start a TCP warning."""
    from jupyter_client import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(log, "ab") as fh:  # the kernel process holds its own copy of the descriptor
                kw.setdefault("stderr", fh)
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return QuietKernelManager


STAGE = ".stage"  # a notebook's new report is made in <target>/.stage-<name>-<owner>/, then moved into place
COMPLETE = "complete.json"  # written into a stage when its report is complete: from then on it is moved in


def report_files(name: str) -> tuple[str, ...]:
    """The files that make up one notebook's report in a reports folder."""
    from .record import SUFFIX

    return name + ".ipynb", name + ".html", name + SUFFIX, name + ".png"


def execute(name: str, profile: str, notebooks_dir: str, target: str, runs_dir: str, kernel: str,
            parameters: dict | None = None) -> NotebookReport:
    """Execute one notebook into a stage folder inside ``target``; only when it succeeds do its files
    replace the notebook's previous report (``_promote``: all of them or, after a crash, completed by the
    next run). A failed or interrupted run leaves the previous report in place; a failed one's executed
    notebook is kept beside it as ``<name>.failed.ipynb`` / ``.html``."""
    import shutil

    import papermill as pm

    from . import locks
    from .record import ENV

    finish_staged(target)
    source = os.path.join(notebooks_dir, name + ".ipynb")
    stage = os.path.join(target, locks.owned_name(STAGE, name))
    os.makedirs(stage)
    ipynb = os.path.join(stage, name + ".ipynb")
    started = time.perf_counter()
    status, error = "ok", ""
    previous = os.environ.get(ENV)
    os.environ[ENV] = stage  # the kernel inherits it: lnft.record.save writes next to the executed notebook
    try:
        try:
            pm.execute_notebook(source, ipynb, parameters={"profile": profile, "runs_dir": runs_dir,
                                                           "progress": False, **(parameters or {})},
                                kernel_name=kernel, cwd=os.path.abspath(notebooks_dir), progress_bar=True,
                                log_output=False, request_save_on_cell_execute=False,
                                kernel_manager_class=_kernel_manager(os.path.join(stage, KERNEL_LOG)))
        except Exception as exc:  # a failing notebook is reported, the next one still runs
            status = "failed"
            error = (getattr(exc, "ename", type(exc).__name__) + ": " + str(getattr(exc, "evalue", exc)))[:300]
        finally:
            if previous is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = previous
        seconds = time.perf_counter() - started
        page = None
        if os.path.isfile(ipynb):
            scrub_paths(ipynb, os.path.join(os.path.basename(os.path.abspath(notebooks_dir)), name + ".ipynb"))
            page = render_html(ipynb)
        if status == "ok":
            _promote(stage, target, name)
            return NotebookReport(name, status, seconds, name + ".ipynb", page and name + ".html", error,
                                  parameters=dict(parameters or {}))
        kept = {}
        for suffix in (".ipynb", ".html", "." + KERNEL_LOG):  # the failed run's notebook, beside the previous report
            failed = os.path.join(target, f"{name}.failed{suffix}")
            made = os.path.join(stage, KERNEL_LOG if suffix == "." + KERNEL_LOG else name + suffix)
            if os.path.isfile(made):
                os.replace(made, failed)
                kept[suffix] = os.path.basename(failed)
            elif os.path.lexists(failed):
                os.remove(failed)
        return NotebookReport(name, status, seconds, kept.get(".ipynb", ""), kept.get(".html"), error,
                              parameters=dict(parameters or {}))
    finally:
        if not os.path.isfile(os.path.join(stage, COMPLETE)):
            shutil.rmtree(stage, ignore_errors=True)  # failed or interrupted: the previous report stays


def _promote(stage: str, target: str, name: str) -> None:
    """Replace the notebook's report in ``target`` with the complete one in ``stage``: first a marker
    (from then on the stage counts as the report, and ``finish_staged`` completes an interrupted move),
    then the files, then the previous report's files the new run did not make, and a failure's leftovers."""
    files = sorted(f for f in os.listdir(stage) if f in report_files(name))
    _write_atomic(os.path.join(stage, COMPLETE), json.dumps({"name": name, "files": files}))
    _finish(stage, target)


def _finish(stage: str, target: str) -> None:
    import shutil

    with open(os.path.join(stage, COMPLETE), encoding="utf-8") as fh:
        marker = json.load(fh)
    name, files = marker["name"], marker["files"]
    for file in files:
        if os.path.lexists(os.path.join(stage, file)):
            os.replace(os.path.join(stage, file), os.path.join(target, file))
    for old in (*report_files(name), f"{name}.failed.ipynb", f"{name}.failed.html", f"{name}.failed.{KERNEL_LOG}"):
        if old not in files and os.path.lexists(os.path.join(target, old)):
            os.remove(os.path.join(target, old))
    shutil.rmtree(stage, ignore_errors=True)


def finish_staged(target: str) -> None:
    """Stages left by a process that died: a complete one is moved into place (its marker says it was
    done), an incomplete one is removed once its process is gone."""
    import shutil

    from . import locks

    for entry in sorted(os.listdir(target)) if os.path.isdir(target) else []:
        path = os.path.join(target, entry)
        if not entry.startswith(STAGE + "-") or not os.path.isdir(path) or not locks.owner_dead(entry, path):
            continue
        if os.path.isfile(os.path.join(path, COMPLETE)):
            try:
                _finish(path, target)
            except (OSError, ValueError, KeyError):
                shutil.rmtree(path, ignore_errors=True)
        else:
            shutil.rmtree(path, ignore_errors=True)


def scrub_paths(ipynb: str, source: str) -> None:
    """Papermill records the absolute input and output paths in the notebook's metadata: keep the
    notebook's path relative to the repository (``source``) and the output's file name."""
    import nbformat

    nb = nbformat.read(ipynb, as_version=4)
    meta = nb.metadata.get("papermill")
    if meta is None:
        return
    meta["input_path"] = source
    meta["output_path"] = os.path.basename(ipynb)
    tmp = f"{ipynb}.tmp-{os.getpid()}"
    nbformat.write(nb, tmp)
    os.replace(tmp, ipynb)


def render_html(ipynb: str) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(ipynb, as_version=4))
    page = ipynb[:-6] + ".html"
    with open(page, "w", encoding="utf-8") as fh:
        fh.write(body)
    return page


def _last_good(report: NotebookReport | None, target: str) -> dict | None:
    """The last good report of a notebook (itself if it was ok, else the one it kept), if its files are
    still in ``target``."""
    if report is None:
        return None
    good = {k: v for k, v in report.__dict__.items() if k != "previous"} if report.status == "ok" else report.previous
    if not good or not good.get("ipynb") or not os.path.isfile(os.path.join(target, good["ipynb"])):
        return None
    return good


def _read_reports(target: str) -> list[NotebookReport]:
    """The notebooks ``reports.json`` lists (nothing when it is absent or unreadable)."""
    try:
        with open(os.path.join(target, "reports.json"), encoding="utf-8") as fh:
            loaded = json.load(fh)
        return [NotebookReport(**r) for r in (loaded["notebooks"] if isinstance(loaded, dict) else loaded)]
    except Exception:  # noqa: BLE001 — absent, truncated or foreign: _merge_previous says so when it rebuilds
        return []


def _merge_previous(target: str, reports: list[NotebookReport], facts: dict | None = None) -> list[NotebookReport]:
    """Keep earlier reports of notebooks not re-run this time on the index. ``reports.json`` holds
    ``{"facts": run_facts, "notebooks": [NotebookReport, ...]}`` (a plain list in older folders)."""
    state = os.path.join(target, "reports.json")
    previous = []
    if os.path.lexists(state):
        try:
            with open(state, encoding="utf-8") as fh:
                loaded = json.load(fh)
            previous = [NotebookReport(**r) for r in (loaded["notebooks"] if isinstance(loaded, dict) else loaded)]
        except Exception as exc:  # noqa: BLE001 — truncated, garbage or foreign: rebuilt from the files
            previous = reports_on_disk(target)
            print(f"lnft: warning: {state} is unreadable ({type(exc).__name__}); rebuilt from the "
                  f"{len(previous)} executed notebook(s) in {target}", file=sys.stderr, flush=True)
    names = {r.name for r in reports}
    merged = sorted([r for r in previous if r.name not in names] + reports, key=lambda r: r.name)
    _write_atomic(state, json.dumps({"facts": facts or {}, "notebooks": [r.__dict__ for r in merged]},
                                    indent=1, ensure_ascii=False))
    return merged


def reports_on_disk(target: str) -> list[NotebookReport]:
    """Reports recovered from the executed notebooks (papermill records duration and failure in them).
    A failed run's notebook (``<name>.failed.ipynb``, removed whenever a later run succeeds) is the latest
    run of that notebook: a failed report, with the good report beside it, if any, as its stale previous one."""
    import nbformat

    def meta_of(file):
        try:
            return nbformat.read(os.path.join(target, file), as_version=4).metadata.get("papermill", {})
        except Exception:  # noqa: BLE001 — not a notebook: not a report
            return None

    def page_of(stem):
        return stem + ".html" if os.path.isfile(os.path.join(target, stem + ".html")) else None

    found = {}
    for file in sorted(f for f in os.listdir(target) if f.endswith(".ipynb") and not f.endswith(".failed.ipynb")):
        meta = meta_of(file)
        if meta is None:
            continue
        found[file[:-6]] = NotebookReport(file[:-6], "failed" if meta.get("exception") else "ok",
                                          float(meta.get("duration") or 0.0), file, page_of(file[:-6]),
                                          "recovered from the executed notebook" if meta.get("exception") else "")
    for file in sorted(f for f in os.listdir(target) if f.endswith(".failed.ipynb")):
        meta = meta_of(file)
        if meta is None:
            continue
        name = file[: -len(".failed.ipynb")]
        good = found.get(name)
        previous = {k: v for k, v in good.__dict__.items() if k != "previous"} if good and good.status == "ok" else None
        found[name] = NotebookReport(name, "failed", float(meta.get("duration") or 0.0), file,
                                     page_of(file[:-6]), "recovered from the executed notebook of the failed run",
                                     previous=previous)
    return [found[name] for name in sorted(found)]


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# What may differ between the commit a report names and the working tree that made it: the outputs.
OUTPUTS = ("reports", "README.md", "ledger")  # the ledger records what a report trained


CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout holding this package


def _git_run(*args: str, where: str | None = None) -> subprocess.CompletedProcess | None:
    """git in ``where`` (default: the checkout holding this lnft package, whatever the current directory);
    None where git cannot run."""
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=30, cwd=where or CHECKOUT)
    except (OSError, subprocess.SubprocessError):
        return None


def _git(*args: str, where: str | None = None) -> str:
    done = _git_run(*args, where=where)
    return done.stdout.strip() if done is not None else ""


def git_commit(where: str | None = None) -> str:
    """The short commit of HEAD, with " (uncommitted changes)" when any file other than the outputs
    (``OUTPUTS``: the reports and the README that quotes them) differs from it, untracked files
    included (git's ignore rules apply); "unknown" outside a git checkout."""
    commit = _git("rev-parse", "--short", "HEAD", where=where)
    if not commit:
        return "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=normal", "--", ":/",
                 *[f":(top,exclude){p}" for p in OUTPUTS], where=where)  # the whole checkout, from any directory
    return commit + (" (uncommitted changes)" if dirty else "")


# What decides a report's numbers: a change here since the reports' commit makes them stale
# (``lnft.staleness`` sorts the changes: run ids, analysis, runtime; serving, storing and the CLI do not count).
REPORT_INPUTS = ("lnft", "notebooks", "requirements.lock")


def stale_reasons(reports: str, where: str | None = None) -> list[str]:
    """Why a reports folder is not what HEAD of the checkout ``where`` would make (empty: it is, or git is
    absent): it names no clean commit, several, or one from which HEAD differs in what decides it
    (``lnft.staleness.staleness``, the one home of the check)."""
    from .staleness import staleness

    return staleness(reports, where).reasons


# The docs site (``make docs`` builds it into site/) as seen from reports/<profile>/index.html
DOCS = "../../site"
VERDICT_CLASS = {"better": "good", "largest": "good", "worse": "bad", "not largest": "bad",
                 "inconclusive": "open"}


def write_index(target: str, profile: str, reports: list[NotebookReport], facts: dict | None = None) -> str:
    """The index: the claims with their recorded verdicts and key figures, then the run facts and the
    notebooks. Every name and value is HTML-escaped; links are URL-quoted."""
    from .record import CLAIMS, read

    facts = dict(facts) if facts else run_facts(profile)
    parameters = facts.pop("parameters", None)
    facts.pop("commit hash", None)
    by_name = {r.name: r for r in reports}
    records, invalid = {}, {}
    for r in reports:  # every recorded word is checked against its own interval (lnft.record.read)
        try:
            records[r.name] = read(target, r.name) if r.status == "ok" or r.previous else None
        except LnftError as exc:
            records[r.name], invalid[r.name] = None, str(exc)
    claims = "\n".join(_claim_section(i, name, by_name.get(name), records.get(name), invalid.get(name, ""))
                       for i, name in enumerate(sorted(set(CLAIMS) | set(by_name)), 1))
    if not invalid:  # every verdict's estimate and interval in one figure (lnft.forest), linked from the README
        from . import forest

        if forest.save(target):
            claims = (f"<p><a href='{forest.FILE}'><img class='forest' src='{forest.FILE}' alt='forest plot of every "
                      f"verdict'></a></p>\n") + claims
    facts["wall time"] = f"{sum(r.seconds for r in reports):.0f} s over {len(reports)} notebook(s)"
    rows_facts = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                            for k, v in facts.items())
    if parameters:
        rows_facts += ("\n<tr><th>parameters</th><td><table class='params'>" + "".join(
            f"<tr><th>{html.escape(str(k))}</th><td><code>{html.escape(json.dumps(v, ensure_ascii=False))}"
            f"</code></td></tr>" for k, v in parameters.items()) + "</table></td></tr>")
    rows = "\n".join(
        f"<tr class='{_attr(r.status)}'><td>{html.escape(r.name)}</td><td>{html.escape(r.status)}</td>"
        f"<td>{r.seconds:.0f}</td><td>{_fact(records.get(r.name), 'tasks')}</td>"
        f"<td>{_fact(records.get(r.name), 'seeds')}</td>"
        f"<td>{_link(r.html, 'HTML') if r.html else '—'} · {_link(r.ipynb, 'notebook') if r.ipynb else '—'}"
        f"{_stale_links(r.previous)}</td>"
        f"<td>{html.escape(r.commit)}</td><td>{html.escape(r.error)}</td></tr>" for r in reports)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lnft reports — {html.escape(profile)}</title>
<style>body{{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222}}
td,th{{padding:.3em .8em;text-align:left;vertical-align:top}} table{{border-collapse:collapse}}
tr.failed td,tr.interrupted td{{color:#b00}} tr.failed td a,tr.interrupted td a{{color:#b00}} .runs td,.verdicts td,.verdicts th{{border-top:1px solid #ddd}}
section.claim{{display:flex;gap:1.5em;align-items:flex-start;border-top:2px solid #ccc;padding:1em 0}}
section.claim .text{{flex:1}} img.thumb{{width:320px;border:1px solid #ccc}}
.good{{color:#176d24;font-weight:bold}} .bad{{color:#b00;font-weight:bold}} .open{{color:#8a6d00;font-weight:bold}}
.same{{color:#1a4f9c;font-weight:bold}} .ci{{color:#555;font-size:90%;white-space:nowrap}} .need{{color:#555;font-size:80%}} .missing{{color:#b00}}
.legend{{color:#444;font-size:95%}} img.forest{{max-width:100%;border:1px solid #ccc}} table.params td,table.params th{{padding:.1em .5em}}</style></head>
<body><h1>lnft reports — profile <code>{html.escape(profile)}</code></h1>
<p>Companion to <i>LayerNorm: A key component in parameter-efficient fine-tuning</i> (arXiv 2403.20284).
Each claim below shows the verdicts its notebook computed and recorded (<code>lnft.record</code>); click a figure
for the full report.</p>
<p class="legend"><a href="{DOCS}/concepts/statistics.html#verdict-words">Verdicts</a> (<code>lnft.stats</code>): a difference of seed means with its 95 % interval (training
noise over seeds and dev-example sampling, each counted once; Welch degrees of freedom);
<span class="good">better</span> / <span class="bad">worse</span>: the interval lies above / below 0;
<span class="same">equivalent within ±m points</span>: its equivalence interval (90 %; 2L − 1 at a decide-mode look of
level L) lies inside ±m (two one-sided tests; m is shown after each comparison or in each cell, with its
reason under the table); <span class="same">non-inferior within m</span>: the interval's lower end, a one-sided
bound, lies above −m; every cell also gives that <a href="{DOCS}/concepts/statistics.html#bounds">bound</a>,
which holds whatever the margin; <span class="open">inconclusive</span>: the data cannot decide — the cell says how many seeds per side would
(80 % power at the observed difference and spread); <span class="open">needs ≥ 2 seeds</span>: one seed on a
side, the interval covers the examples only. Rankings read <span class="good">largest</span> /
<span class="bad">not largest</span> / <span class="open">inconclusive</span>. <a href="{DOCS}/concepts/statistics.html#flags">†</a>
a possibly undertrained run enters the comparison (the report says why). Each cell says how many seeds per side
it used and why it stopped (<a href="{DOCS}/concepts/statistics.html#decide-mode">decide mode</a>: decided,
maximum reached, futile (conditional power below 10 %); else fixed seeds); in decide mode an interval's level is the
look's (above 95 %: the error rate is spent across the looks). Terms: the
<a href="{DOCS}/index.html">documentation site</a> (<code>make docs</code> builds it into <code>site/</code>).</p>
<h2>Claims and verdicts</h2>
{claims}
<h2>Run facts</h2>
<table>{rows_facts}</table>
<h2>Notebooks</h2>
<table class="runs"><tr><th>notebook</th><th>status</th><th>seconds</th><th>tasks</th><th>seeds</th><th>report</th>
<th>commit</th><th>error</th></tr>
{rows}
</table></body></html>
"""
    from . import staleness  # the first line of the body says when the reports no longer follow from HEAD

    page = staleness.with_banner(page, staleness.banner(staleness.staleness(target), profile))
    path = os.path.join(target, "index.html")
    _write_atomic(path, page)
    return path


def _claim_section(number: int, name: str, report: NotebookReport | None, record: dict | None,
                   problem: str = "") -> str:
    from .record import CLAIMS

    claim = (record or {}).get("claim") or CLAIMS.get(name, "")
    page = report and ((report.previous or {}).get("html") if report.status != "ok" and report.previous else report.html)
    head = (f"<h3>Claim {number} · {_link(page, name) if page else html.escape(name)}</h3>"
            f"<p>{html.escape(claim)}</p>")
    if report is None:
        body = "<p class='missing'>Not run in this folder: no verdict.</p>"
    elif problem:
        body = f"<p class='missing'>The recorded verdicts cannot be shown: {html.escape(problem)}</p>"
    elif report.status != "ok" and report.previous and record is not None:
        prev = report.previous
        body = (f"<p class='missing'>The latest run {'was ' if report.status == 'interrupted' else ''}"
                f"{html.escape(report.status)}: {html.escape(report.error or report.status)}"
                f"{' (' + _link(report.html, 'its report') + ')' if report.html else ''}. <b>Stale:</b> the verdicts "
                f"below are the previous good report's (commit {html.escape(str(prev.get('commit') or '?'))}).</p>"
                + _verdict_table(record.get("verdicts", [])))
    elif report.status != "ok":
        body = (f"<p class='missing'>The notebook failed, so this claim has no verdict: "
                f"{html.escape(report.error or report.status)}</p>")
    elif record is None:
        body = "<p class='missing'>The notebook recorded no verdicts (no <code>lnft.record.save</code> cell ran).</p>"
    else:
        body = _verdict_table(record.get("verdicts", []))
    figure = ""
    if record and record.get("figure") and report:
        image = f"<img class='thumb' src=\"{_attr(urllib.parse.quote(record['figure']))}\" alt=\"key figure of {_attr(name)}\">"
        figure = (f'<a href="{_attr(urllib.parse.quote(page))}">{image}</a>' if page else image)
    return f"<section class='claim'><div class='text'>{head}{body}</div>{figure}</section>"


def _verdict_table(verdicts: list[dict]) -> str:
    """Rows: comparisons (with their equivalence margin); columns: tasks, ``average`` last; a cell: the
    verdict word, the estimate and its interval, the seeds per side that would decide an inconclusive one,
    † when flagged (the flags, or the summary, in its tooltip)."""
    from .record import STANDS_ALONE, bound_label, grid, margin_label, margin_reasons, numbers, seeds_text

    comparisons, tasks, cells = grid(verdicts)
    head = "<tr><th>comparison</th>" + "".join(f"<th>{html.escape(t)}</th>" for t in tasks) + "</tr>"
    body = []
    for comparison in comparisons:
        tds = []
        for task in tasks:
            v = cells.get((comparison, task))
            if v is None:
                tds.append("<td>—</td>")
                continue
            word = str(v.get("verdict", ""))
            css = "same" if word.startswith(("equivalent", "non-inferior")) else VERDICT_CLASS.get(word, "open")
            tip = _attr(v.get("flags") or v.get("summary") or "")
            needed = (f"<br><span class='need'>{html.escape(str(v['seeds_needed']))}</span>"
                      if v.get("seeds_needed") else "")
            used = f"<br><span class='need'>{html.escape(seeds_text(v))}</span>" if seeds_text(v) else ""
            said = bound_label(v, not margin_label(verdicts, comparison))
            bound = f"<br><span class='ci'>{html.escape(said)}</span>" if said else ""
            tds.append(f"<td title=\"{tip}\"><span class='{css}'>{html.escape(word)}</span>"
                       f"{' †' if v.get('flagged') else ''}<br><span class='ci'>{html.escape(numbers(v))}</span>"
                       f"{bound}{used}{needed}</td>")
        label = comparison + margin_label(verdicts, comparison)
        body.append(f"<tr><td>{html.escape(label)}</td>{''.join(tds)}</tr>")
    reasons = margin_reasons(verdicts)
    notes = (f"<p class='need'>Margin: {html.escape('; '.join(reasons))}.</p>" if reasons else "")
    return (f"<table class='verdicts'>{head}{''.join(body)}</table>{notes}"
            f"<p class='need'>{html.escape(STANDS_ALONE)}</p>")


def _stale_links(previous: dict | None) -> str:
    if not previous:
        return ""
    links = " · ".join(_link(previous[k], label) for k, label in (("html", "HTML"), ("ipynb", "notebook"))
                       if previous.get(k))
    return f"<br>previous good report (stale): {links}"


def _fact(record: dict | None, key: str) -> str:
    value = (record or {}).get("facts", {}).get(key)
    return "—" if value is None else html.escape(", ".join(map(str, value)) if isinstance(value, list) else str(value))


def _attr(text: str) -> str:
    return html.escape(str(text), quote=True)


def _link(file: str, label: str) -> str:
    """A link to a file next to the index: URL-quoted, then HTML-escaped (a name cannot leave the href)."""
    return f'<a href="{_attr(urllib.parse.quote(file))}">{html.escape(label)}</a>'


def add_cli(sub) -> None:
    p = sub.add_parser("reports", help="execute the notebooks with papermill and render HTML reports")
    p.add_argument("--profile", default="quick", help="smoke, quick, standard, full or paper")
    p.add_argument("--notebooks", nargs="+", metavar="NAME", help="notebook names without .ipynb (default: all)")
    p.add_argument("--out", default="reports", help="reports directory (a folder per profile is made inside)")
    p.add_argument("--notebooks-dir", default="notebooks")
    p.add_argument("--runs", default=None, help="runs directory (default: $LNFT_RUNS or ./runs)")
    p.add_argument("--kernel", default=KERNEL)
    p.add_argument("--ledger", default=None, help="results ledger: runs whose id it holds are served from it, the "
                   "others trained and recorded into it (default: $LNFT_LEDGER; none when unset)")
    p.add_argument("--engine", default=None, help="local (default: $LNFT_ENGINE or local) or ray (one Ray task per run)")
    p.add_argument("--address", default=None, help="ray: none starts a local Ray; auto, host:port or ray://host:port "
                   "joins a running cluster")
    p.add_argument("--num-cpus", type=float, default=None, help="ray: CPUs per run (default 1)")
    p.add_argument("--num-gpus", type=float, default=None, help="ray: GPUs per run; 0.25 packs four runs on a GPU")
    # overrides of the profile, given to every notebook that has the parameter (checked before any runs)
    p.add_argument("--model", help="'embedded', a hub name or a local model directory")
    p.add_argument("--data", help="'embedded' or a hub dataset name (nyu-mll/glue)")
    p.add_argument("--data-dir", help="a local directory in the GLUE layout (<TASK>/train.tsv, <TASK>/dev.tsv)")
    p.add_argument("--tasks", nargs="+", metavar="TASK")
    p.add_argument("--task-spec", metavar="FILE", help="your own task (a YAML/JSON spec, see README 'Your own task'): "
                   "every notebook runs on it instead of the profile's tasks")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED")
    p.add_argument("--decide", action=argparse.BooleanOptionalAction, default=None,
                   help="decide mode (notebooks 2 and 3): after the profile's seeds, add seeds in rounds only to the "
                        "runs behind comparisons still inconclusive, the error rate spent across the looks "
                        "(default: the profile's)")
    p.add_argument("--max-seeds", type=int, default=None, metavar="N",
                   help="decide mode: at most N seeds per side (default: the profile's)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="any notebook parameter; VALUE is read as a Python/YAML literal, as papermill does")
    p.set_defaults(func=_cmd_reports)


def engine_parameters(args, given: dict | None = None) -> dict:
    """Check the engine options before any notebook runs (ray: join or start it now and check that a node
    can hold one run) and return the notebook parameters and environment they become. The effective
    engine and address are the flags', else ``-p engine`` / ``-p address`` (``given``), else the environment's."""
    from .engine import ENV, connect, resolve_engine

    given = given or {}
    engine = args.engine if args.engine is not None else given.get("engine")
    address = args.address if args.address is not None else given.get("address")
    flags = not (engine is None and address is None and args.num_cpus is None and args.num_gpus is None)
    try:  # the environment's engine (LNFT_ENGINE...) is checked here too, not in the first notebook
        cfg = resolve_engine(engine, address, num_cpus=args.num_cpus, num_gpus=args.num_gpus)
    except LnftError as exc:
        if engine is None and os.environ.get(ENV["name"]):
            raise LnftError(f"{exc} (from ${ENV['name']}={os.environ[ENV['name']]!r})") from None
        raise
    if not flags and cfg.name == "local":
        return {}
    if cfg.name != "ray":
        if args.num_cpus is not None or args.num_gpus is not None:
            raise LnftError("--num-cpus/--num-gpus are only allowed with --engine ray, not "
                            f"{cfg.name!r}")
        return {"engine": cfg.name}
    connect(cfg)  # a local Ray started here is joined by the notebooks ("auto") and ends with this process
    os.environ[ENV["num_cpus"]], os.environ[ENV["num_gpus"]] = str(cfg.num_cpus), str(cfg.num_gpus)
    return {"engine": "ray", "address": cfg.address or "auto", "num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus}


def overrides(args) -> dict:
    """The command line's overrides as notebook parameters (``-p`` first; the named flags win)."""
    out = {name: parse_value(value) for name, value in args.parameter}
    flags = {"model": args.model, "data": args.data, "data_dir": args.data_dir, "tasks": args.tasks,
             "seeds": args.seeds, "task_spec": args.task_spec, "decide": args.decide, "max_seeds": args.max_seeds}
    out.update({k: v for k, v in flags.items() if v is not None})
    for key in ("model", "data", "data_dir", "task_spec"):  # notebooks run in their own directory: local paths absolute
        value = out.get(key)
        if isinstance(value, str) and (key in ("data_dir", "task_spec") or os.path.exists(os.path.expanduser(value))):
            out[key] = os.path.abspath(os.path.expanduser(value))
    return out


def _cmd_reports(args) -> int:
    from .store import RunStore
    from .store.ledger import ENV as LEDGER_ENV, Ledger

    if args.ledger:  # the notebooks' kernels inherit it (for this command only)
        before = os.environ.get(LEDGER_ENV)
        os.environ[LEDGER_ENV] = Ledger(args.ledger).root
        try:
            return _cmd_reports(argparse.Namespace(**{**vars(args), "ledger": None}))
        finally:
            if before is None:
                os.environ.pop(LEDGER_ENV, None)
            else:
                os.environ[LEDGER_ENV] = before
    store = RunStore(args.runs)
    store.check_writable()
    started = time.perf_counter()
    names, _ = check_request(args.profile, args.notebooks, args.out, args.notebooks_dir, args.kernel)
    given = overrides(args)
    plan_parameters(args.profile, names, args.notebooks_dir, given)  # bad overrides fail before Ray starts
    parameters = engine_parameters(args, given)  # -p engine / -p address too, through resolve_engine
    given.update({k: v for k, v in parameters.items() if k in ("engine", "address")})
    reports = run_reports(args.profile, args.notebooks, args.out, args.notebooks_dir, store.root, args.kernel,
                          parameters=given)
    failed = [r.name for r in reports if r.status != "ok"]
    print(f"[lnft reports] {len(reports) - len(failed)} ok, {len(failed)} failed in "
          f"{time.perf_counter() - started:.0f} s; index: {os.path.join(args.out, args.profile, 'index.html')}")
    return 1 if failed else 0
