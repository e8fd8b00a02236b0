import math

import numpy as np
import pytest

from lnft import LnftError
from lnft.tasks import TASKS, get_task


def test_registry_has_all_nine_glue_tasks():
    assert set(TASKS) == {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}
    assert get_task("SST-2").name == "sst2" and get_task("STS-B").name == "stsb"
    assert get_task("stsb").is_regression and get_task("stsb").num_labels == 1
    assert get_task("mnli").num_labels == 3 and get_task("rte").num_labels == 2
    assert not get_task("cola").is_pair and get_task("mrpc").is_pair


def test_standard_metrics_per_task():
    assert get_task("cola").metric_names() == ["matthews"]
    assert get_task("mrpc").metric_names() == ["f1", "accuracy"]
    assert get_task("qqp").metric_names() == ["f1", "accuracy"]
    assert get_task("stsb").metric_names() == ["pearson", "spearman"]
    assert get_task("mnli").metric_names() == ["accuracy_matched", "accuracy_mismatched"]
    for name in ("sst2", "qnli", "rte", "wnli"):
        assert get_task(name).metric_names() == ["accuracy"]


def test_metric_values_match_hand_computation():
    labels, preds = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    m = get_task("mrpc").compute_metrics(labels, preds)
    # tp=2 fp=1 fn=1 -> precision=recall=2/3 -> f1=2/3; 3 of 5 correct
    assert m["f1"] == pytest.approx(2 / 3) and m["accuracy"] == pytest.approx(0.6)
    mcc = get_task("cola").compute_metrics(labels, preds)["matthews"]
    tp, tn, fp, fn = 2, 1, 1, 1
    assert mcc == pytest.approx((tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    s = get_task("stsb").compute_metrics([0.0, 1.0, 2.0, 3.0], [0.0, 2.0, 4.0, 6.0])
    assert s["pearson"] == pytest.approx(1.0) and s["spearman"] == pytest.approx(1.0)
    m = get_task("mnli").compute_metrics([0, 1, 2], [0, 1, 1], split="dev_mismatched")
    assert m == {"accuracy_mismatched": pytest.approx(2 / 3)}


def test_score_is_glue_mean_in_points():
    assert get_task("mrpc").score({"f1": 0.8, "accuracy": 0.7}) == pytest.approx(75.0)
    assert get_task("stsb").score({"pearson": 0.9, "spearman": 0.8}) == pytest.approx(85.0)


def test_constant_predictions_do_not_crash_correlations():
    s = get_task("stsb").compute_metrics(np.arange(4.0), np.ones(4))
    assert s == {"pearson": 0.0, "spearman": 0.0}


def test_unknown_task_names_allowed_values():
    with pytest.raises(LnftError, match=r"unknown task 'glue-x'; allowed: cola, sst2"):
        get_task("glue-x")
