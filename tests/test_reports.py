"""The report pipeline: papermill executes, nbconvert renders, the index links every report."""
import json
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from lnft.cli import main

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")


def test_smoke_report_has_html_with_figures_and_an_index(smoke_reports):
    page = (smoke_reports / "01_change_analysis.html").read_text()
    assert page.count("data:image/png;base64") >= 4  # heatmaps and bar charts embedded as images
    assert "Verdict" in page and "checks passed" in page
    index = (smoke_reports / "index.html").read_text()
    assert 'href="01_change_analysis.html"' in index and "smoke" in index and "git commit" in index
    executed = nbformat.read(str(smoke_reports / "01_change_analysis.ipynb"), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "profile = \"smoke\"" in injected[0].source


def test_each_notebook_records_its_verdicts_from_the_frames_it_shows(smoke_reports):
    from lnft import record, stats

    words = set(stats.VERDICTS) | set(stats.LEAD_WORDS.values())
    for name in record.CLAIMS:
        saved = record.load(str(smoke_reports), name)
        assert saved and saved["claim"] == record.CLAIMS[name] and saved["verdicts"], name
        assert (smoke_reports / saved["figure"]).stat().st_size > 1000
        assert {v["verdict"] for v in saved["verdicts"]} <= words
        assert all(v["lo"] <= v["hi"] for v in saved["verdicts"] if v["verdict"] != stats.NEEDS_SEEDS)
        assert all(v["lo"] is None for v in saved["verdicts"] if v["unit"] == "×" and v["verdict"] == stats.NEEDS_SEEDS)
        assert saved["facts"]["tasks"] and saved["facts"]["seeds"]
        # the last cell displays what was recorded: the same rows as the JSON
        executed = nbformat.read(str(smoke_reports / f"{name}.ipynb"), as_version=4)
        last = executed.cells[-1]
        assert "record.save" in last.source and last.outputs
        shown = last.outputs[0]["data"]["text/plain"]
        for v in saved["verdicts"]:
            assert v["comparison"][:20] in shown and v["verdict"][:12] in shown
    index = (smoke_reports / "index.html").read_text()
    lead = record.load(str(smoke_reports), "02_peft_comparison")["verdicts"][0]
    assert record.numbers(lead) in index and lead["comparison"] in index


def test_smoke_reports_hold_no_machine_path_and_no_warnings(smoke_reports):
    checkout = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    for file in sorted(smoke_reports.iterdir()):
        if file.suffix in (".html", ".ipynb", ".json"):
            text = file.read_text()
            assert checkout not in text and str(smoke_reports) not in text, file.name
    for name in ("01_change_analysis", "02_peft_comparison", "03_fisher_subsets"):
        executed = nbformat.read(str(smoke_reports / f"{name}.ipynb"), as_version=4)
        stderr = [o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs
                  if o.get("name") == "stderr" or o.get("output_type") == "error"]
        assert stderr == [], (name, stderr)
        assert executed.metadata.papermill["input_path"] == f"notebooks/{name}.ipynb"


def _notebook(path, body):
    nb = new_notebook(cells=[new_code_cell("profile = 'x'\nruns_dir = None\nprogress = True",
                                           metadata={"tags": ["parameters"]}), new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def _good_report(folder, name):
    """The files and reports.json entry of an earlier, good run of notebook ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    good = {"format": 1, "notebook": name, "claim": "c", "figure": name + ".png", "facts": {},
            "verdicts": [{"comparison": "x − y", "task": "sst2", "verdict": "better", "estimate": 1.0, "lo": 0.5,
                          "hi": 1.5}]}
    (folder / f"{name}.verdicts.json").write_text(json.dumps(good))
    for suffix, text in ((".png", "png"), (".ipynb", "{}"), (".html", "<p>the good report</p>")):
        (folder / f"{name}{suffix}").write_text(text)
    (folder / "reports.json").write_text(json.dumps({"facts": {}, "notebooks": [
        {"name": name, "status": "ok", "seconds": 5.0, "ipynb": name + ".ipynb", "html": name + ".html",
         "commit": "good123"}]}))
    return {f: (folder / f).read_text() for f in os.listdir(folder) if f.startswith(name)}


def test_a_failing_notebook_keeps_the_previous_good_report_marked_stale(tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _notebook(nbdir / "01_fails.ipynb", "raise ValueError('broken on purpose')")
    _notebook(nbdir / "02_works.ipynb", "print('fine')")
    out = tmp_path / "reports"
    before = _good_report(out / "smoke", "01_fails")
    args = ["reports", "--profile", "smoke", "--out", str(out), "--notebooks-dir", str(nbdir), "--runs",
            str(tmp_path / "runs")]
    assert main(args) == 1
    for file, text in before.items():  # the earlier good report: every file in place, unchanged
        assert (out / "smoke" / file).read_text() == text, file
    assert (out / "smoke" / "01_fails.failed.html").is_file()  # the failure, beside it
    assert not [f for f in os.listdir(out / "smoke") if f.startswith(".stage")]
    state = {r["name"]: r for r in json.loads((out / "smoke" / "reports.json").read_text())["notebooks"]}
    assert state["01_fails"]["status"] == "failed" and "broken on purpose" in state["01_fails"]["error"]
    assert state["01_fails"]["previous"]["commit"] == "good123" and state["01_fails"]["previous"]["status"] == "ok"
    assert state["02_works"]["status"] == "ok"
    index = (out / "smoke" / "index.html").read_text()
    assert "class='failed'" in index and 'href="02_works.html"' in index
    assert "The latest run failed: ValueError: broken on purpose" in index and "Stale:" in index
    assert "+1.0 (+0.5 to +1.5)" in index and 'href="01_fails.failed.html"' in index
    assert "previous good report (stale)" in index
    assert main(args) == 1  # failing again: still the same good report, still stale
    assert json.loads((out / "smoke" / "reports.json").read_text())["notebooks"][0]["previous"]["commit"] == "good123"
    from lnft.record import markdown

    assert "**Stale:** the verdicts below are the previous good report's (commit `good123`)" in markdown(
        str(out / "smoke"))
    # a failure with no earlier report says so, as before
    _notebook(nbdir / "03_new.ipynb", "raise ValueError('new and broken')")
    assert main([*args, "--notebooks", "03_new"]) == 1
    assert "The notebook failed, so this claim has no verdict: ValueError: new and broken" in (
        out / "smoke" / "index.html").read_text()
    # review of 21, item 8: an index rebuilt from disk keeps both failures (one with its stale good report)
    (out / "smoke" / "reports.json").write_text("{garbage")
    assert main([*args, "--notebooks", "02_works"]) == 0
    state = {r["name"]: r for r in json.loads((out / "smoke" / "reports.json").read_text())["notebooks"]}
    assert state["03_new"]["status"] == "failed" and state["03_new"]["ipynb"] == "03_new.failed.ipynb", state
    assert state["01_fails"]["status"] == "failed" and state["01_fails"]["ipynb"] == "01_fails.failed.ipynb"
    assert state["02_works"]["status"] == "ok"


def test_an_interrupted_report_leaves_the_previous_one_and_a_finished_stage_is_completed(tmp_path, monkeypatch):
    import papermill

    from lnft import locks, reports

    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _notebook(nbdir / "01_slow.ipynb", "print('x')")
    target = tmp_path / "reports" / "smoke"
    before = _good_report(target, "01_slow")

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupt)
    args = ["reports", "--profile", "smoke", "--out", str(tmp_path / "reports"), "--notebooks-dir", str(nbdir),
            "--runs", str(tmp_path / "runs")]
    assert main(args) == 130
    assert {f: (target / f).read_text() for f in before} == before
    assert not [f for f in os.listdir(target) if f.startswith(".stage")]
    # the index and reports.json say so: the previous good report, stale, beside the interruption
    [entry] = json.loads((target / "reports.json").read_text())["notebooks"]
    assert entry["status"] == "interrupted" and entry["previous"]["commit"] == "good123", entry
    index = (target / "index.html").read_text()
    assert "class='interrupted'" in index and "The latest run was interrupted" in index and "Stale:" in index
    assert "previous good report (stale)" in index and "+1.0 (+0.5 to +1.5)" in index
    from lnft.record import markdown

    assert "The latest run was interrupted" in markdown(str(target)) and "**Stale:**" in markdown(str(target))
    monkeypatch.undo()
    # a process killed while moving a complete report into place: the next run completes the move
    dead = __import__("subprocess").Popen([__import__("sys").executable, "-c", "pass"])
    dead.wait()
    stage = target / f".stage-01_slow-{locks.HOST_KEY}-{dead.pid}-12345678"
    stage.mkdir()
    (stage / "01_slow.ipynb").write_text('{"new": 1}')
    (stage / "complete.json").write_text(json.dumps({"name": "01_slow", "files": ["01_slow.ipynb"]}))
    reports.finish_staged(str(target))
    assert (target / "01_slow.ipynb").read_text() == '{"new": 1}' and not stage.exists()
    assert not (target / "01_slow.verdicts.json").exists()  # the old report's other files went with it


def test_unknown_notebook_and_profile(tmp_path, capsys):
    assert main(["reports", "--profile", "huge", "--out", str(tmp_path)]) == 2
    assert "unknown profile 'huge'; allowed: smoke, quick, standard, full, paper" in capsys.readouterr().err
    assert main(["reports", "--notebooks", "09_nope", "--out", str(tmp_path), "--notebooks-dir", NOTEBOOKS]) == 2
    assert "unknown notebook(s) ['09_nope']" in capsys.readouterr().err


def test_corrupt_reports_json_is_rebuilt_from_the_executed_notebooks(tmp_path, capsys):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _notebook(nbdir / "01_first.ipynb", "print('one')")
    _notebook(nbdir / "02_second.ipynb", "print('two')")
    out = tmp_path / "reports"
    args = ["reports", "--profile", "smoke", "--out", str(out), "--notebooks-dir", str(nbdir), "--runs",
            str(tmp_path / "runs")]
    assert main([*args, "--notebooks", "01_first"]) == 0
    (out / "smoke" / "reports.json").write_text('[{"name": "01_fi')  # truncated
    assert main([*args, "--notebooks", "02_second"]) == 0
    assert "reports.json is unreadable (JSONDecodeError); rebuilt from the 2 executed notebook(s)" in capsys.readouterr().err
    state = {r["name"]: r for r in json.loads((out / "smoke" / "reports.json").read_text())["notebooks"]}
    assert set(state) == {"01_first", "02_second"} and state["01_first"]["status"] == "ok"
    assert state["01_first"]["seconds"] > 0  # papermill's recorded duration
    assert [f for f in os.listdir(out / "smoke") if ".tmp" in f] == []


def test_index_escapes_and_quotes_every_name(tmp_path):
    from lnft.reports import NotebookReport, write_index

    evil = '01_x" onmouseover="alert(1)'
    page = open(write_index(str(tmp_path), "smoke", [
        NotebookReport(evil, "ok", 1.0, evil + ".ipynb", evil + ".html", "<script>x</script>")])).read()
    assert 'onmouseover="alert' not in page and "<script>x" not in page
    assert 'href="01_x%22%20onmouseover%3D%22alert%281%29.html"' in page
    assert "01_x&quot; onmouseover=&quot;alert(1)" in page  # the visible name, escaped


def test_index_escapes_recorded_verdicts_and_shows_parameters(tmp_path):
    import pandas as pd

    from lnft import record
    from lnft.reports import NotebookReport, run_facts, write_index

    table = pd.DataFrame({"task": ["<b>sst2</b>", "average"], "diff": [1.5, 1.5], "lo": [0.5, -3.0],
                          "hi": [2.5, 6.0], "verdict": ["better", "inconclusive"], "undertrained": [False, True],
                          "flags": ["", 'x" onclick="y']})
    record.save("02_peft_comparison", [record.rows(table, "<script>alert(1)</script>")], out=str(tmp_path))
    facts = run_facts("smoke", "abc1234", parameters={"tasks": ["<i>rte</i>"], "model": "m"})
    page = open(write_index(str(tmp_path), "smoke", [
        NotebookReport("02_peft_comparison", "ok", 3.0, "02_peft_comparison.ipynb", "02_peft_comparison.html")],
        facts)).read()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>sst2" not in page and "&lt;b&gt;sst2&lt;/b&gt;" in page and 'onclick="y' not in page
    assert "+1.0 (+0.5 to +2.5)" not in page and "+1.5 (+0.5 to +2.5)" in page and "+1.5 (−3.0 to +6.0)" in page
    assert page.index("Claims and verdicts") < page.index("Run facts") < page.index("parameters")
    assert "&lt;i&gt;rte&lt;/i&gt;" in page and "abc1234" in page
    assert page.count("not run in this folder".capitalize()) == 2  # claims 1 and 3 say they have no verdict


def test_git_commit_names_uncommitted_code_but_not_outputs(tmp_path):
    import subprocess

    from lnft.reports import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "lnft").mkdir()
    (tmp_path / "lnft" / "a.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("r\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    clean = git_commit(str(tmp_path))
    assert clean and "uncommitted" not in clean and clean != "unknown"
    (tmp_path / "README.md").write_text("results\n")
    (tmp_path / "reports" / "quick").mkdir(parents=True)
    (tmp_path / "reports" / "quick" / "index.html").write_text("x")
    assert git_commit(str(tmp_path)) == clean  # outputs do not count
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "lnft" / "b.py").write_text("y = 2\n")  # a new, untracked module does
    assert git_commit(str(tmp_path)) == clean + " (uncommitted changes)"
    # asked from another directory of the checkout, the whole checkout still counts
    assert git_commit(str(tmp_path / "reports")) == clean + " (uncommitted changes)"


def test_one_schema_covers_every_notebook_parameter_and_profile_value():
    """The parameters cells, the profiles and lnft reports share lnft.profiles.SCHEMA (issue 21)."""
    import papermill as pm

    from lnft import profiles
    from lnft.reports import available_notebooks

    for name in available_notebooks(NOTEBOOKS):
        cell = pm.inspect_notebook(os.path.join(NOTEBOOKS, name + ".ipynb"))
        assert set(cell) <= set(profiles.SCHEMA), (name, sorted(set(cell) - set(profiles.SCHEMA)))
        for key, spec in cell.items():  # the cell's own literals pass (None: the profile's value)
            profiles.check_parameter(key, eval(spec["default"]))  # noqa: S307 — plain literals, by the rule
        for profile, spec in profiles.PROFILES.items():
            assert set({**spec["common"], **spec[name]}) <= set(profiles.SCHEMA), (profile, name)
            profiles.resolve(name, profile)  # every profile value passes its own schema and the notebook's rules
    import pytest

    from lnft import LnftError

    with pytest.raises(LnftError, match=r"invalid seeds \[\]; allowed: a non-empty list"):
        profiles.resolve("01_change_analysis", "smoke", seeds=[])  # a notebook run by hand refuses it too
    with pytest.raises(LnftError, match="has no entry in lnft.profiles.SCHEMA"):
        profiles.check_parameter("nosuch", 1)


def _no_notebook_may_run(monkeypatch):
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: pytest.fail("a notebook started"))


REFUSED = {  # issue 31, defects 9 and 11: each refused before any notebook starts (they failed inside one)
    "comparators with layernorm": (["-p", "comparators", '["layernorm"]'],
                                   "invalid comparators ['layernorm']; allowed: a list (may be empty) of distinct "
                                   "methods other than layernorm"),
    "a task and its alias": (["-p", "tasks", '["sst2", "SST-2"]'], "invalid tasks ['sst2', 'SST-2']; allowed: a "
                                                                  "non-empty list of distinct task names"),
    "a task and its alias, --tasks": (["--tasks", "rte", "RTE"], "invalid tasks ['rte', 'RTE']; allowed: a non-empty "
                                                                 "list of distinct task names (cola"),
    "an alias in method_tasks": (["-p", "method_tasks", '{"full": ["sst2", "sst-2"]}'], "invalid method_tasks"),
    "an unknown kernel": (["--kernel", "nonexistent"], "unknown kernel 'nonexistent'; allowed: python3"),
    "a notebooks folder without notebooks": (["--notebooks-dir", "EMPTY"], "no notebook found in "),
}


@pytest.mark.parametrize("case", REFUSED)
def test_bad_reports_requests_are_refused_before_any_work(tmp_path, capsys, monkeypatch, case):
    flags, message = REFUSED[case]
    (tmp_path / "EMPTY").mkdir()
    out = tmp_path / "reports"
    before = _good_report(out / "smoke", "01_change_analysis")  # a previous report: it stays as it is
    state = (out / "smoke" / "reports.json").read_text()
    _no_notebook_may_run(monkeypatch)
    flags = [str(tmp_path / f) if f == "EMPTY" else f for f in flags]
    args = ["reports", "--profile", "smoke", "--out", str(out), "--runs", str(tmp_path / "runs")]
    assert main([*args, *(["--notebooks-dir", NOTEBOOKS] if "--notebooks-dir" not in flags else []), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lnft: error: ") and message in err[0], err
    assert {f: (out / "smoke" / f).read_text() for f in before} == before
    assert (out / "smoke" / "reports.json").read_text() == state and not (out / "smoke" / "index.html").exists()
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_during_reports_exits_130_with_one_line_and_keeps_the_previous_report(tmp_path):
    """Issue 31, defect 14: Ctrl-C (SIGINT to the terminal's process group) while a notebook runs printed the
    kernel's ZMQ traceback. Now: exit 130, "lnft: interrupted", no traceback, the previous report in place."""
    import signal
    import subprocess
    import sys
    import time

    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    started = tmp_path / "started"
    _notebook(nbdir / "01_slow.ipynb", f"import pathlib, time\npathlib.Path({str(started)!r}).write_text('x')\n"
                                       "time.sleep(120)")
    target = tmp_path / "reports" / "smoke"
    before = _good_report(target, "01_slow")
    checkout = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    env = {**os.environ, "PYTHONPATH": checkout + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "lnft", "reports", "--profile", "smoke", "--out",
                             str(tmp_path / "reports"), "--notebooks-dir", str(nbdir), "--runs", str(tmp_path / "runs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
                            # a terminal's foreground job: SIGINT at its default even when this suite was started in
                            # the background of a shell, which ignores it (and an ignored signal is inherited)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert started.exists(), proc.communicate(timeout=60)
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "ZMQError" not in err and "Traceback" not in out, err
    assert err.strip().splitlines()[-1] == "lnft: interrupted", err
    assert {f: (target / f).read_text() for f in before} == before
    [entry] = json.loads((target / "reports.json").read_text())["notebooks"]
    assert entry["status"] == "interrupted" and entry["previous"]["commit"] == "good123"
    assert not [f for f in os.listdir(target) if f.startswith(".stage")]


def test_the_index_checks_every_recorded_word_against_its_interval(tmp_path):
    """Issue 31, defect 13: the index shows no verdict word its own interval contradicts; it names the file."""
    from lnft.reports import NotebookReport, write_index

    _good_report(tmp_path, "02_peft_comparison")
    report = NotebookReport("02_peft_comparison", "ok", 3.0, "02_peft_comparison.ipynb", "02_peft_comparison.html")
    page = open(write_index(str(tmp_path), "smoke", [report], {"profile": "smoke"})).read()
    assert "+1.0 (+0.5 to +1.5)" in page and "cannot be shown" not in page
    path = tmp_path / "02_peft_comparison.verdicts.json"
    record = json.loads(path.read_text())
    record["verdicts"][0]["lo"] = -0.5  # "better" with an interval that spans 0
    path.write_text(json.dumps(record))
    page = open(write_index(str(tmp_path), "smoke", [report], {"profile": "smoke"})).read()
    assert "+1.0 (−0.5 to +1.5)" not in page and "The recorded verdicts cannot be shown" in page
    assert "says &#x27;better&#x27; but its 95 % interval [-0.5, 1.5] does not lie above 0" in page
    path.write_text(path.read_text()[:40])  # cut off mid-file
    page = open(write_index(str(tmp_path), "smoke", [report], {"profile": "smoke"})).read()
    assert "is unreadable (JSONDecodeError" in page and str(path) in page


def test_notebook_3_tunes_on_the_first_seed_end_to_end(tmp_path):
    """Issue 37.3 through the notebook itself (smoke, tune_seeds=1, three seeds): seed 0 trains every rule at every
    rate of masked_lrs, seeds 1 and 2 each rule at the one rate it chose; the notebook's own check cell counts the
    runs (it fails the report otherwise)."""
    from collections import defaultdict

    from lnft.store import RunStore

    out, runs = tmp_path / "reports", tmp_path / "runs"
    args = ["reports", "--profile", "smoke", "--notebooks", "03_fisher_subsets", "--out", str(out), "--runs", str(runs),
            "-p", "tune_seeds", "1", "-p", "seeds", "[0, 1, 2]", "-p", "decide", "false"]
    assert main(args) == 0
    rates = defaultdict(set)
    for r in RunStore(str(runs), ledger=False).results():
        if r.config.method == "layernorm-masked":
            rates[(r.config.seed, r.config.mask_path)].add(r.config.lr)
    assert {len(v) for (seed, _), v in rates.items() if seed == 0} == {2}  # smoke's masked_lrs: 1e-2, 3e-2
    assert {len(v) for (seed, _), v in rates.items() if seed} == {1} and {s for s, _ in rates} == {0, 1, 2}
