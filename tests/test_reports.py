"""The report pipeline: papermill executes, nbconvert renders, the index links every report."""
import json
import os

import nbformat
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


def test_a_failing_notebook_is_reported_and_the_others_still_run(tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _notebook(nbdir / "01_fails.ipynb", "raise ValueError('broken on purpose')")
    _notebook(nbdir / "02_works.ipynb", "print('fine')")
    out = tmp_path / "reports"
    (out / "smoke").mkdir(parents=True)
    stale = {"format": 1, "notebook": "01_fails", "claim": "c", "figure": None, "facts": {},
             "verdicts": [{"comparison": "x − y", "task": "sst2", "verdict": "better"}]}
    (out / "smoke" / "01_fails.verdicts.json").write_text(json.dumps(stale))  # from an earlier, good run
    code = main(["reports", "--profile", "smoke", "--out", str(out), "--notebooks-dir", str(nbdir), "--runs",
                 str(tmp_path / "runs")])
    assert code == 1
    assert not (out / "smoke" / "01_fails.verdicts.json").exists()
    state = {r["name"]: r for r in json.loads((out / "smoke" / "reports.json").read_text())["notebooks"]}
    assert state["01_fails"]["status"] == "failed" and "broken on purpose" in state["01_fails"]["error"]
    assert state["02_works"]["status"] == "ok"
    index = (out / "smoke" / "index.html").read_text()
    assert "class='failed'" in index and 'href="02_works.html"' in index
    assert "The notebook failed, so this claim has no verdict: ValueError: broken on purpose" in index


def test_unknown_notebook_and_profile(tmp_path, capsys):
    assert main(["reports", "--profile", "huge", "--out", str(tmp_path)]) == 2
    assert "unknown profile 'huge'; allowed: smoke, quick, full, paper" in capsys.readouterr().err
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
