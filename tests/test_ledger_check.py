"""CI proves the committed verdicts follow from the committed results: every report re-rendered from the ledger
alone (no training, no weights) gives the verdicts recorded beside it and the README block's tables."""
import os

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LEDGER = os.path.join(ROOT, "ledger")  # the committed results ledger
# (reports folder, the Markdown file quoting it), as scripts/readme_results.py BLOCKS
COMMITTED = (("standard", "README.md"), ("quick", "docs/concepts/experiments.md"))


def test_smoke_verdicts_follow_from_the_ledger_its_runs_were_recorded_in(smoke_reports, tmp_path):
    """The mechanism, on the smoke report the suite makes: every run it used is in its ledger, and the notebooks
    re-run from that ledger alone (training forbidden, an empty run store) record the same verdicts."""
    from lnft import ledger_check, record
    from lnft.store.ledger import Ledger

    ledger = Ledger(smoke_reports.parent / "ledger")
    known, missing = ledger_check.missing_runs("smoke", ledger)
    assert known > 0 and missing == []
    again = ledger_check.rerender("smoke", ledger.root, out=str(tmp_path), notebooks_dir=os.path.join(ROOT, "notebooks"))
    assert ledger_check.compare_verdicts(str(smoke_reports), again) == []
    assert ledger_check.compare_blocks(record.markdown(str(smoke_reports)), again) == []
    assert os.listdir(tmp_path) == ["smoke"] or "smoke" in os.listdir(tmp_path)
    assert not [r for r in os.listdir(again) if r.endswith(".failed.ipynb")]


@pytest.mark.parametrize("profile,markdown", COMMITTED)
def test_committed_verdicts_follow_from_the_committed_ledger(profile, markdown, tmp_path):
    """Runs where the committed ledger holds every run of the profile (HEAD's run ids) and the reports follow
    from HEAD; stale reports are marked instead (tests/test_readme_results.py)."""
    from lnft import ledger_check, staleness
    from lnft.store.ledger import Ledger

    reports = os.path.join(ROOT, "reports", profile)
    if not os.path.isdir(LEDGER):
        pytest.skip(f"no committed ledger ({LEDGER}); python -m lnft reports --profile {profile} --ledger ledger "
                    "records one")
    state = staleness.staleness(reports, ROOT)
    if state:
        pytest.skip(f"reports/{profile} is stale (marked): {'; '.join(state.reasons)}")
    known, missing = ledger_check.missing_runs(profile, Ledger(LEDGER))
    if missing:
        pytest.skip(f"the ledger lacks {len(missing)} of the {known} runs of {profile} that HEAD plans")
    again = ledger_check.rerender(profile, LEDGER, out=str(tmp_path), notebooks_dir=os.path.join(ROOT, "notebooks"))
    assert ledger_check.compare_verdicts(reports, again) == []
    with open(os.path.join(ROOT, markdown), encoding="utf-8") as fh:
        text = fh.read()
    block = text[text.index("<!-- results:begin -->"):text.index("<!-- results:end -->")]
    assert ledger_check.compare_blocks(block, again) == []
