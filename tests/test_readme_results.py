"""scripts/readme_results.py: the README's results block is what the committed reports recorded, and
the reports name the commit they were made from."""
import importlib.util
import json
import os
import subprocess

import pandas as pd
import pytest

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



def _record_file(folder):
    return folder / "02_peft_comparison.verdicts.json"


def test_an_unreadable_verdicts_file_stops_the_script_and_is_named(tmp_path, capsys):
    """Issue 31, defect 3: a verdicts file cut off mid-file made --check say only "differs", and the write mode
    replaced the claim's table with "The notebook recorded no verdicts"."""
    folder, readme = _folder(tmp_path, "0b69dec")
    script = _script()
    args = ["--reports", str(folder), "--readme", str(readme), "--repo", ROOT]
    assert script.main(args) == 0
    written = readme.read_text()
    assert "| layernorm − full |" in written
    text = _record_file(folder).read_text()
    for broken in (text[: len(text) // 2], "[1, 2]", '{"verdicts": "none"}'):
        _record_file(folder).write_text(broken)
        for mode in ([], ["--check"]):
            assert script.main([*args, *mode]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and str(_record_file(folder)) in err[0] and "readme_results: error:" in err[0], err
            assert readme.read_text() == written  # nothing rewritten, no claim deleted


def _edit(folder, **changes):
    """The first recorded row, with an equivalence margin of 1 point (as lnft.stats tables record it) and
    ``changes``; the other rows as saved."""
    path = _record_file(folder)
    original = path.with_suffix(".original")
    if not original.exists():
        original.write_text(path.read_text())
    record = json.loads(original.read_text())
    record["verdicts"][0].update({"margin": 1.0, **changes})
    path.write_text(json.dumps(record))


EDITS = {  # first row: inconclusive, estimate +0.2, 95 % interval −8.3 to +8.9 (spans 0), margin 1
    "better while the interval spans 0": dict(verdict="better"),
    "worse while the interval spans 0": dict(verdict="worse"),
    "equivalent while the interval is wide": dict(verdict="equivalent within ±1 point", eq_lo=-7.0, eq_hi=7.5),
    "equivalent at another margin": dict(verdict="equivalent within ±2 point", eq_lo=-0.5, eq_hi=0.6),
    "inconclusive while the interval lies above 0": dict(lo=0.1),
    "inconclusive while equivalent": dict(lo=-0.9, hi=0.95, eq_lo=-0.7, eq_hi=0.8),
    "needs ≥ 2 seeds with 3 seeds": dict(verdict="needs ≥ 2 seeds", seeds=3),
    "a word outside the vocabulary": dict(verdict="much better"),
    "better at a level that is not one": dict(verdict="better", lo=0.5, level=95),
    "largest while the ratio interval spans 1": dict(verdict="largest", unit="×", estimate=1.1, lo=0.9, hi=1.3),
    "estimate outside its interval": dict(estimate=12.0),
}


@pytest.mark.parametrize("edit", EDITS)
def test_a_verdict_word_its_own_interval_contradicts_is_refused(tmp_path, capsys, edit):
    """Issue 31, defect 13: a word edited in the record and the README both passed --check."""
    folder, readme = _folder(tmp_path, "0b69dec")
    script = _script()
    args = ["--reports", str(folder), "--readme", str(readme), "--repo", ROOT]
    _edit(folder, **EDITS[edit])
    assert script.main([*args, "--check"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(_record_file(folder)) in err[0] and "verdict 1 (layernorm − full, sst2)" in err[0], err
    assert script.main(args) == 2 and "old" in readme.read_text()  # the write mode refuses it too


def test_consistent_words_pass_the_check(tmp_path):
    """The check refuses only contradictions: the same row with a word its numbers support passes."""
    from lnft import record

    folder, _ = _folder(tmp_path, "0b69dec")
    for changes in (dict(verdict="better", lo=0.1), dict(verdict="worse", estimate=-1.0, hi=-0.2),
                    dict(verdict="equivalent within ±1 point", lo=-1.1, hi=1.2, eq_lo=-0.9, eq_hi=0.95),
                    dict(verdict="inconclusive", estimate=2.0, lo=2.0, hi=2.0),  # no variance: never better
                    dict(verdict="needs ≥ 2 seeds", seeds=1, lo=0.5),
                    dict(verdict="inconclusive", unit="×", estimate=1.2, lo=1.1, hi=1.3, margin=None)):
        _edit(folder, **changes)
        assert record.read(str(folder), "02_peft_comparison")["verdicts"][0]["verdict"] == changes["verdict"]
