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
    """Fails until `make reports` has been run at the code commit and the README block regenerated."""
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


def test_a_report_from_another_commit_or_dirty_tree_fails_the_check(tmp_path):
    script = _script()
    folder, _ = _folder(tmp_path, "a890fa5 (uncommitted changes)")
    assert any("not a clean commit" in p for p in script.stale_reasons(str(folder), ROOT))
    first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=ROOT, capture_output=True,
                           text=True).stdout.split()[0]
    other, _ = _folder(tmp_path / "b", first[:7])
    assert any("differs from it in what decides them (lnft, notebooks, requirements.lock): " in p and "lnft/" in p
               for p in script.stale_reasons(str(other), ROOT))


def test_a_checkout_that_does_not_exist_is_named(tmp_path):
    folder, _ = _folder(tmp_path, "0b69dec")
    assert any("does not exist" in p for p in _script().stale_reasons(str(folder), str(tmp_path / "nowhere")))

