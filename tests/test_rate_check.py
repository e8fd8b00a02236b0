"""The rate-selection check (lnft.rate_check): the cheap choice on the tuning seeds against the full grid's."""
import pandas as pd
import pytest

from lnft import rate_check
from lnft.errors import LnftError


def _long(validation: dict, dev: dict, keys=("task", "method")) -> pd.DataFrame:
    """validation/dev: {(seed, lr): score} for one arm (sst2, layernorm)."""
    rows = []
    for split, table in (("validation", validation), ("dev", dev)):
        for (seed, lr), value in table.items():
            rows.append({"task": "sst2", "method": "layernorm", "seed": seed, "lr": lr, "split": split,
                         "metric": "score", "value": value})
            rows.append({"task": "sst2", "method": "layernorm", "seed": seed, "lr": lr, "split": split,
                         "metric": "accuracy", "value": -100.0})  # another metric: never read
    return pd.DataFrame(rows)


def test_agreement_and_the_cost_of_a_different_choice():
    # seed 0 prefers 1e-2; seeds 0-2 together prefer 3e-2 (seeds 1 and 2 strongly)
    validation = {(0, 1e-2): 80, (0, 3e-2): 79, (1, 1e-2): 70, (1, 3e-2): 78, (2, 1e-2): 70, (2, 3e-2): 78}
    dev = {(s, lr): v - 1 for (s, lr), v in validation.items()}
    table = rate_check.compare_choices(_long(validation, dev), [0], ["task", "method"])
    row = table.iloc[0]
    assert row["tuned lr"] == 1e-2 and row["full-grid lr"] == 3e-2 and not row["same"] and row["seeds"] == 3
    assert row["dev at tuned lr"] == pytest.approx((79 + 69 + 69) / 3)
    assert row["dev cost"] == pytest.approx((78 + 77 + 77) / 3 - (79 + 69 + 69) / 3)
    assert "0 of 1 arms" in rate_check.summary(table)
    # every seed agreeing: the same rate, no cost
    same = {(s, lr): (80 if lr == 1e-2 else 75) for s in range(3) for lr in (1e-2, 3e-2)}
    table = rate_check.compare_choices(_long(same, same), [0], ["task", "method"])
    assert table["same"].all() and table["dev cost"].iloc[0] == 0 and "1 of 1 arms" in rate_check.summary(table)


def test_an_incomplete_grid_or_no_other_seed_is_refused():
    validation = {(0, 1e-2): 80, (0, 3e-2): 79, (1, 1e-2): 70}  # seed 1 never ran 3e-2: no full grid
    with pytest.raises(LnftError, match="full grid is incomplete"):
        rate_check.compare_choices(_long(validation, validation), [0], ["task", "method"])
    one = {(0, 1e-2): 80, (0, 3e-2): 79}
    with pytest.raises(LnftError, match="proper subset"):
        rate_check.compare_choices(_long(one, one), [0], ["task", "method"])
