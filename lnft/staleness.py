"""Whether committed reports still follow from the code, and the mark that says so when they do not.

Why: regenerating the reference report costs most of an hour, so an edit to ``lnft/`` must not block until it
is regenerated. Instead the README block and ``reports/<profile>/index.html`` say in their first line that the
reports are stale, since which commit, why, and the command that regenerates them; ``scripts/readme_results.py
--check`` (and the test that runs it) checks that the mark is there exactly when the reports are stale.

A report is stale only when what decided it changed since the commit it names (``kinds``):
- ``run ids``: the training path (``lnft.fingerprints.TRAINING_PATH``, the code fingerprint in every run id) or
  the embedded data: every run retrains;
- ``analysis``: the rest of the package the notebooks run, and the notebooks: the runs are served from the
  results ledger (``lnft.store.ledger``) and only the notebooks re-run;
- ``runtime``: the pinned packages (``requirements.lock``).
Serving, storing, scheduling and the command line (``NOT_DECIDING``) do not change a number a notebook computes.
"""
from __future__ import annotations

import html
import os
import re
import subprocess
from dataclasses import dataclass, field

NOT_DECIDING = ("lnft/store", "lnft/cli.py", "lnft/plan.py", "lnft/locks.py", "lnft/progress.py", "lnft/engine.py",
                "lnft/errors.py", "lnft/__main__.py", "lnft/staleness.py", "lnft/ledger_check.py")
INPUTS = ("lnft", "notebooks", "requirements.lock")
# besides the training path's modules: the embedded data's files, and the derived data a run records (lnft.derived)
RUN_ID_INPUTS = ("lnft/glue_data", "lnft/derived.py")
REMEDY = {"run ids": "retrain", "analysis": "re-render from the ledger", "runtime": "re-run",
          "made": "regenerate"}
MARK = "**Stale since"  # the README block's first line when stale
BANNER_BEGIN, BANNER_END = "<!-- stale:begin -->", "<!-- stale:end -->"


CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout holding this package


def _git_run(*args: str, where: str | None = None) -> subprocess.CompletedProcess | None:
    """git in ``where`` (default: the checkout holding lnft); None where git cannot run."""
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=30, cwd=where or CHECKOUT)
    except (OSError, subprocess.SubprocessError):
        return None


@dataclass
class Staleness:
    """Why a reports folder is not what HEAD would make: ``since`` the first commit that changed what decides it
    (or the commit the reports name when they name no clean one); empty ``reasons``: fresh."""

    since: str = ""
    reasons: list[str] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.reasons)


def kind_of(path: str) -> str | None:
    """``run ids`` / ``analysis`` / ``runtime`` for a changed file that decides reports, None for one that does not."""
    from .fingerprints import TRAINING_PATH

    if not any(path == i or path.startswith(i + "/") for i in INPUTS):
        return None
    if any(path == n or path.startswith(n + "/") for n in NOT_DECIDING):
        return None
    if path == "requirements.lock":
        return "runtime"
    if path in {f"lnft/{m}.py" for m in TRAINING_PATH} or any(path == p or path.startswith(p + "/")
                                                               for p in RUN_ID_INPUTS):
        return "run ids"
    return "analysis"


def staleness(reports: str, where: str | None = None) -> Staleness:
    """The staleness of a reports folder against HEAD of the checkout ``where`` (default: the one holding lnft);
    fresh where git is absent."""
    from .record import read_state

    runs = read_state(reports).get("notebooks", [])
    if not runs:
        return Staleness("unknown", ["reports.json lists no notebooks"], {"made"})
    out = Staleness()
    commits = sorted({str(r.get("commit") or "unknown") for r in runs})
    if len(commits) > 1:
        out.reasons.append(f"the reports were made at different commits: {commits}")
        out.kinds.add("made")
    if where is not None and not os.path.isdir(where):
        out.reasons.append(f"the checkout {where!r} to compare the reports with does not exist")
        out.kinds.add("made")
        out.since = out.since or commits[0].split()[0]
        return out
    for commit in commits:
        base = commit.split()[0]
        if commit == "unknown":
            out.reasons.append("reports.json records no commit (made before reports named theirs, or "
                               "outside git)")
        elif "uncommitted" in commit:
            out.reasons.append(f"the reports name commit {commit!r}, not a clean commit")
        else:
            changed = _git_run("diff", "--name-only", base, "HEAD", "--", where=where)
            if changed is None:
                continue  # no git: nothing to compare with
            if changed.returncode != 0:
                out.reasons.append(f"commit {base} is not in this repository: {changed.stderr.strip()[:200]}")
            else:
                by_kind: dict[str, list[str]] = {}
                for f in changed.stdout.split():
                    if kind_of(f):
                        by_kind.setdefault(kind_of(f), []).append(f)
                for kind, files in sorted(by_kind.items()):
                    out.reasons.append(f"{kind} changed ({', '.join(files[:6])}{' …' if len(files) > 6 else ''}): "
                                       f"{REMEDY[kind]}")
                    out.kinds.add(kind)
                if by_kind:
                    out.since = out.since or first_change(base, where) or base
                continue
        out.kinds.add("made")
        out.since = out.since or base
    if out.reasons and not out.since:
        out.since = commits[0].split()[0]
    return out


def first_change(commit: str, where: str | None = None) -> str:
    """The first commit after ``commit`` (on the way to HEAD) that changed a file deciding the reports."""
    done = _git_run("log", "--reverse", "--format=%h %H", "--name-only", f"{commit}..HEAD", "--", *INPUTS,
                    where=where)
    if done is None or done.returncode != 0:
        return ""
    current = ""
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{40}", parts[1]):
            current = parts[0]
        elif line.strip() and current and kind_of(line.strip()):
            return current
    return ""


def command(profile: str) -> str:
    """What regenerates a profile's reports and the README blocks that quote them."""
    return f"make reports PROFILE={profile} && python scripts/readme_results.py"


def mark_text(state: Staleness, profile: str) -> str:
    """One line: ``stale since <commit>: <reasons>; regenerate with <command>`` (plain text)."""
    return f"Stale since {state.since}: {'; '.join(state.reasons)}; regenerate with {command(profile)}"


def markdown_mark(state: Staleness, profile: str) -> str:
    """The README block's first line when stale ("" when fresh)."""
    if not state:
        return ""
    reasons = "; ".join(r.replace("|", "\\|") for r in state.reasons)
    return f"{MARK} `{state.since}`**: {reasons}; regenerate with `{command(profile)}`."


def read_markdown_mark(block: str) -> tuple[str, str] | None:
    """(since, command) of a README block's mark, or None when its first line is not one."""
    first = block.lstrip("\n").split("\n", 1)[0]
    found = re.fullmatch(r"\*\*Stale since `([^`]*)`\*\*: .*; regenerate with `([^`]*)`\.", first)
    return (found.group(1), found.group(2)) if found else None


def strip_markdown_mark(block: str) -> str:
    """The block without its mark line (and the blank line after it)."""
    body = block.lstrip("\n")
    if read_markdown_mark(body) is None:
        return block
    rest = body.split("\n", 1)[1] if "\n" in body else ""
    return block[: len(block) - len(body)] + rest.lstrip("\n")


def banner(state: Staleness, profile: str) -> str:
    """The index page's banner, the first element of its body ("" when fresh)."""
    if not state:
        return ""
    return (f"{BANNER_BEGIN}<p class='stale' style='color:#b00;font-weight:bold'>{html.escape(mark_text(state, profile))}"
            f"</p>{BANNER_END}\n")


def with_banner(page: str, text: str) -> str:
    """An index page with its banner replaced by ``text`` (none when empty), right after ``<body>``."""
    page = re.sub(re.escape(BANNER_BEGIN) + ".*?" + re.escape(BANNER_END) + "\n?", "", page, flags=re.S)
    at = page.find("<body>")
    if at < 0:
        return page
    at += len("<body>")
    return page[:at] + text + page[at:]


def read_banner(page: str) -> str | None:
    """The banner's plain text when it is the first thing in the body, else None."""
    at = page.find("<body>")
    if at < 0:
        return None
    found = re.match(re.escape(BANNER_BEGIN) + r"<p[^>]*>(.*?)</p>" + re.escape(BANNER_END), page[at + len("<body>"):],
                     flags=re.S)
    return html.unescape(found.group(1)) if found else None


def mark_index(folder: str, profile: str, where: str | None = None) -> bool:
    """Write (or remove) the stale banner of ``folder/index.html`` without regenerating anything; True when
    the file changed."""
    path = os.path.join(folder, "index.html")
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as fh:
        page = fh.read()
    wanted = with_banner(page, banner(staleness(folder, where), profile))
    if wanted != page:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(wanted)
        os.replace(tmp, path)
    return wanted != page


def check_index(folder: str, profile: str, where: str | None = None) -> list[str]:
    """Problems with an index page's mark: present exactly when stale, naming the right commit and command."""
    path = os.path.join(folder, "index.html")
    if not os.path.isfile(path):
        return [f"{path} is missing"]
    with open(path, encoding="utf-8") as fh:
        found = read_banner(fh.read())
    return _compare(found and _parse_plain(found), staleness(folder, where), profile, path)


def check_markdown(block: str, state: Staleness, profile: str, where_text: str) -> list[str]:
    return _compare(read_markdown_mark(block), state, profile, where_text)


def _parse_plain(text: str) -> tuple[str, str] | None:
    found = re.fullmatch(r"Stale since (\S*): .*; regenerate with (.*)", text, flags=re.S)
    return (found.group(1), found.group(2)) if found else None


def _compare(found, state: Staleness, profile: str, where_text: str) -> list[str]:
    fix = "run python scripts/readme_results.py --mark-stale"
    if state and found is None:
        return [f"{where_text} does not say in its first line that the reports are stale ({'; '.join(state.reasons)}): "
                f"{fix}, or regenerate with {command(profile)}"]
    if not state and found is not None:
        return [f"{where_text} says the reports are stale, but they follow from HEAD: {fix}"]
    if state and found != (state.since, command(profile)):
        return [f"{where_text} marks the reports stale since {found[0]!r} with {found[1]!r}; wanted since "
                f"{state.since!r} with {command(profile)!r}: {fix}"]
    return []
