"""Which verdicts changed between two reports (lnft.verdict_diff)."""
import json

import pytest

from lnft import verdict_diff
from lnft.errors import LnftError


def _folder(path, verdicts):
    path.mkdir()
    (path / "02_peft_comparison.verdicts.json").write_text(json.dumps({"verdicts": verdicts}))
    return str(path)


def test_changes_line_up_comparisons_across_rates_and_say_what_moved(tmp_path):
    old = _folder(tmp_path / "old", [
        {"comparison": "layernorm − full (±1)", "task": "sst2", "verdict": "inconclusive", "estimate": -2.4},
        {"comparison": "layernorm − head (±1)", "task": "sst2", "verdict": "better", "estimate": 15.4},
        {"comparison": "layernorm − lora (±1)", "task": "sst2", "verdict": "inconclusive", "estimate": -1.9}])
    new = _folder(tmp_path / "new", [
        {"comparison": "layernorm (lr 0.01) − full (lr 3e-05)", "task": "sst2", "verdict": "non-inferior within 2.8",
         "estimate": 0.4},
        {"comparison": "layernorm − head", "task": "sst2", "verdict": "better", "estimate": 4.1},
        {"comparison": "layernorm − head", "task": "cola", "verdict": "better", "estimate": 9.0}])
    table = verdict_diff.changes(verdict_diff.load(old), verdict_diff.load(new)).set_index(["comparison", "task"])
    assert table.loc[("layernorm − full", "sst2"), "status"] == "changed"
    assert table.loc[("layernorm − full", "sst2"), "verdict now"] == "non-inferior within 2.8"
    assert table.loc[("layernorm − head", "sst2"), "status"] == "same"
    assert table.loc[("layernorm − head", "cola"), "status"] == "new"
    assert table.loc[("layernorm − lora", "sst2"), "status"] == "gone"
    assert list(verdict_diff.changes(verdict_diff.load(old), verdict_diff.load(new))["status"])[0] == "changed"


def test_a_folder_without_verdicts_is_refused(tmp_path):
    with pytest.raises(LnftError, match="no recorded verdicts"):
        verdict_diff.load(str(tmp_path))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "02_peft_comparison.verdicts.json").write_text("{not json")
    with pytest.raises(LnftError, match="unreadable verdicts file"):
        verdict_diff.load(str(bad))
