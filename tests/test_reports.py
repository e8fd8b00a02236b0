"""The report pipeline: papermill executes, nbconvert renders, the index links every report."""
import json
import os

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from lnft.cli import main

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")


def test_smoke_report_has_html_with_figures_and_an_index(tmp_path):
    out = tmp_path / "reports"
    code = main(["reports", "--profile", "smoke", "--notebooks", "01_change_analysis", "--out", str(out),
                 "--notebooks-dir", NOTEBOOKS, "--runs", os.environ.get("LNFT_RUNS", str(tmp_path / "runs"))])
    assert code == 0
    page = (out / "smoke" / "01_change_analysis.html").read_text()
    assert page.count("data:image/png;base64") >= 4  # heatmaps and bar charts embedded as images
    assert "Verdict" in page and "checks passed" in page
    index = (out / "smoke" / "index.html").read_text()
    assert 'href="01_change_analysis.html"' in index and "smoke" in index and "git commit" in index
    executed = nbformat.read(str(out / "smoke" / "01_change_analysis.ipynb"), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "profile = \"smoke\"" in injected[0].source


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
    code = main(["reports", "--profile", "smoke", "--out", str(out), "--notebooks-dir", str(nbdir), "--runs",
                 str(tmp_path / "runs")])
    assert code == 1
    state = {r["name"]: r for r in json.loads((out / "smoke" / "reports.json").read_text())}
    assert state["01_fails"]["status"] == "failed" and "broken on purpose" in state["01_fails"]["error"]
    assert state["02_works"]["status"] == "ok"
    index = (out / "smoke" / "index.html").read_text()
    assert "class='failed'" in index and 'href="02_works.html"' in index


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
    state = {r["name"]: r for r in json.loads((out / "smoke" / "reports.json").read_text())}
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
