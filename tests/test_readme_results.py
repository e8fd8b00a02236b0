"""scripts/readme_results.py: the README's results block is what the committed reports recorded, and
the reports name the commit they were made from."""
import importlib.util
import json
import os
import subprocess

import pandas as pd

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _script():
    spec = importlib.util.spec_from_file_location("readme_results", os.path.join(ROOT, "scripts", "readme_results.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_results_match_the_committed_reports(capsys):
    """The README blocks are what the committed reports recorded, and they and the reports' index pages say in
    their first line exactly when the reports no longer follow from HEAD (stale reports are marked, not
    blocking: `python scripts/readme_results.py --mark-stale` marks them)."""
    code = _script().main(["--check"])
    assert code == 0, capsys.readouterr().err


def _folder(tmp_path, commit):
    from lnft import record

    folder = tmp_path / "reports" / "quick"
    folder.mkdir(parents=True)
    table = pd.DataFrame({"task": ["sst2", "stsb", "average"], "diff": [0.2, -0.1, 0.1], "lo": [-8.3, -18.7, -9.5],
                          "hi": [8.9, 18.3, 9.8], "verdict": ["inconclusive"] * 3, "undertrained": [True, False, True],
                          "flags": ["one lr tried", "", "x"]})
    record.save("02_peft_comparison", [record.rows(table, "layernorm − full")], out=str(folder))
    notebooks = [{"name": "02_peft_comparison", "status": "ok", "seconds": 395.0, "ipynb": "02_peft_comparison.ipynb",
                  "html": "02_peft_comparison.html", "error": "", "commit": commit}]
    (folder / "reports.json").write_text(json.dumps({"facts": {"profile": "quick"}, "notebooks": notebooks}))
    (folder / "index.html").write_text("<!doctype html>\n<html><head></head>\n<body><h1>x</h1></body></html>\n")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- results:begin -->\nold\n<!-- results:end -->\n\nafter\n")
    return folder, readme


def test_block_is_written_from_the_records_and_checked(tmp_path, capsys):
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    folder, readme = _folder(tmp_path, head)
    script = _script()
    args = ["--reports", str(folder), "--readme", str(readme), "--repo", ROOT]
    assert script.main([*args, "--check"]) == 1 and "differs from" in capsys.readouterr().err
    assert script.main(args) == 0
    text = readme.read_text()
    assert "| layernorm − full | *inconclusive* † +0.2 (−8.3 to +8.9) | *inconclusive* −0.1 (−18.7 to +18.3) |" in text
    assert "[report](reports/quick/02_peft_comparison.html)" in text and "Claim 1." in text and "after" in text
    assert "Not run: no verdict." in text  # notebooks 1 and 3 are absent from this folder
    problems = script.stale_reasons(str(folder), ROOT)
    assert script.main([*args, "--check"]) == (1 if problems else 0)  # HEAD vs itself: only a dirty tree differs
    readme.write_text(text.replace("+8.9", "+9.9"))
    assert script.main([*args, "--check"]) == 1


def _first_commit():
    return subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.split()[0]


def test_a_report_from_another_commit_or_dirty_tree_is_stale(tmp_path):
    script = _script()
    folder, _ = _folder(tmp_path, "a890fa5 (uncommitted changes)")
    assert any("not a clean commit" in p for p in script.stale_reasons(str(folder), ROOT))
    other, _ = _folder(tmp_path / "b", _first_commit()[:7])
    reasons = script.stale_reasons(str(other), ROOT)
    assert any(p.startswith("run ids changed (") and "lnft/" in p and p.endswith(": retrain") for p in reasons), reasons


def test_what_decides_a_report():
    from lnft.staleness import kind_of

    assert kind_of("lnft/train.py") == "run ids" and kind_of("lnft/glue_data/SST-2/dev.tsv") == "run ids"
    assert kind_of("lnft/derived.py") == "run ids"  # what a run records beside its predictions
    assert kind_of("lnft/stats.py") == "analysis" and kind_of("notebooks/01_change_analysis.ipynb") == "analysis"
    assert kind_of("requirements.lock") == "runtime"
    for unrelated in ("lnft/store/files.py", "lnft/cli.py", "lnft/engine.py", "docs/index.md", "tests/test_x.py",
                      "reports/quick/index.html", "lnftx/train.py"):
        assert kind_of(unrelated) is None, unrelated


def test_stale_reports_are_marked_not_blocking(tmp_path, capsys):
    from lnft import staleness

    script = _script()
    first = _first_commit()
    folder, readme = _folder(tmp_path, first[:7])
    args = ["--reports", str(folder), "--readme", str(readme), "--repo", ROOT]
    assert script.main(args) == 0  # written with its mark, the index marked too
    state = staleness.staleness(str(folder), ROOT)
    assert state and state.since and state.since != first[:7]  # the first commit after it that changed lnft
    line = readme.read_text().split("<!-- results:begin -->\n", 1)[1].split("\n", 1)[0]
    assert line.startswith(f"**Stale since `{state.since}`**: ") and "regenerate with `make reports PROFILE=quick" in line
    banner = staleness.read_banner((folder / "index.html").read_text())
    assert banner.startswith(f"Stale since {state.since}: ") and "make reports PROFILE=quick" in banner
    capsys.readouterr()
    assert script.main([*args, "--check"]) == 0, capsys.readouterr().err  # marked: not blocking

    text = readme.read_text()
    readme.write_text(text.replace(line + "\n\n", ""))  # the mark removed: the check says so
    assert script.main([*args, "--check"]) == 1 and "does not say in its first line" in capsys.readouterr().err
    (folder / "index.html").write_text(staleness.with_banner((folder / "index.html").read_text(), ""))
    assert script.main([*args, "--mark-stale"]) == 0
    assert readme.read_text() == text and staleness.read_banner((folder / "index.html").read_text()) == banner
    assert script.main([*args, "--check"]) == 0

    readme.write_text(text.replace(f"since `{state.since}`", "since `0000000`"))  # the wrong commit named
    assert script.main([*args, "--check"]) == 1 and "wanted since" in capsys.readouterr().err
    readme.write_text(text.replace("+8.9", "+9.9"))  # the table itself must still match the records
    assert script.main([*args, "--check"]) == 1 and "differs from" in capsys.readouterr().err


def test_fresh_reports_carry_no_mark_and_quick_must_be_regenerated_on_new_run_ids(tmp_path, capsys, monkeypatch):
    from lnft import staleness

    script = _script()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    folder, readme = _folder(tmp_path, head)
    args = ["--reports", str(folder), "--readme", str(readme), "--repo", ROOT]
    assert script.main(args) == 0 and "Stale since" not in readme.read_text()
    marked = staleness.Staleness("abc1234", ["analysis changed (lnft/stats.py): re-render"], {"analysis"})
    (folder / "index.html").write_text(staleness.with_banner((folder / "index.html").read_text(),
                                                             staleness.banner(marked, "quick")))
    capsys.readouterr()
    assert script.main([*args, "--check"]) == 1 and "follow from HEAD" in capsys.readouterr().err
    assert script.main([*args, "--mark-stale"]) == 0 and script.main([*args, "--check"]) == 0

    old, _ = _folder(tmp_path / "q", _first_commit()[:7])
    readme_q = tmp_path / "q" / "README.md"
    args = ["--reports", str(old), "--readme", str(readme_q), "--repo", ROOT]
    assert script.main(args) == 0 and script.main([*args, "--check"]) == 0
    relative = os.path.relpath(str(old), script.ROOT).replace(os.sep, "/")
    monkeypatch.setattr(script, "REGENERATE_ON_RUN_IDS", (relative,))
    capsys.readouterr()
    assert script.main([*args, "--check"]) == 1 and "used runs whose ids changed" in capsys.readouterr().err


def test_a_checkout_that_does_not_exist_is_named(tmp_path):
    folder, _ = _folder(tmp_path, "0b69dec")
    assert any("does not exist" in p for p in _script().stale_reasons(str(folder), str(tmp_path / "nowhere")))

