"""Named parameter sets for the notebooks: smoke (tests), quick (the default report, ~20 min on
2 CPU cores), full (all embedded tasks, full train sets, 3 seeds) and paper (bert-large-cased and hub
GLUE, 5 seeds, for a GPU machine with internet).

A notebook's ``parameters`` cell holds ``profile`` plus optional overrides (None = take the profile's
value); ``resolve`` merges them. The ``common`` part is shared by all notebooks so that their runs have
identical configs and the run store reuses them across notebooks.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType

from .config import EMBEDDED, HUB_GLUE, RunConfig
from .errors import LnftError
from .tasks import EMBEDDED_TASKS

PEFT_METHODS = ["full", "layernorm", "layernorm-output", "bitfit", "lora", "head"]
FULL_LRS = [2e-5, 5e-5, 1e-4]
PEFT_LRS = [1e-3, 3e-3, 1e-2]

PROFILES = {
    "smoke": {
        "common": dict(model=EMBEDDED, data=EMBEDDED, tasks=["sst2", "stsb"], epochs=1, batch_size=16,
                       max_train_samples=32, max_eval_samples=32, device="auto"),
        "01_change_analysis": dict(seeds=[0], lr=1e-4, layernorm_lr=1e-2),
        "02_peft_comparison": dict(select_on="validation", seeds=[0, 1], methods=PEFT_METHODS,
                                   lr_grid={"full": [1e-4], "head": [1e-2, 3e-3], "default": [1e-2]}),
        "03_fisher_subsets": dict(tasks=["sst2"], seeds=[0, 1], fractions=[20, 100], control_fractions=[5, 20], cv_fractions=[],
                                  fisher_samples=16, folds=2, lr=1e-2, fisher_kind="empirical",
                                  fisher_points=["pretrained", "finetuned"], permute_seed=0, baseline_lr={"full": 1e-4}),
    },
    "quick": {
        "common": dict(model=EMBEDDED, data=EMBEDDED, tasks=["sst2", "stsb"], epochs=2, batch_size=32,
                       max_train_samples=1000, max_eval_samples=400, device="auto"),
        "01_change_analysis": dict(seeds=[0], lr=1e-4, layernorm_lr=1e-2),
        # quick trims to fit 20 minutes on 2 CPU cores: no layernorm-output in notebook 2, SST-2 only in 3
        "02_peft_comparison": dict(select_on="validation", seeds=[0, 1],
                                   methods=["full", "layernorm", "bitfit", "lora", "head"],
                                   lr_grid={"full": [1e-4], "default": [1e-2]}),
        # nb 3: 2 points x 2 seeds x 1 fraction x 3 rules (random shared by the points) = 10 masked runs;
        # the all-LayerNorm, head and full runs are notebook 2's; no union/intersection runs (full, paper)
        "03_fisher_subsets": dict(tasks=["sst2"], seeds=[0, 1], fractions=[1, 100], control_fractions=[1, 10],
                                  cv_fractions=[], fisher_samples=256, folds=2, lr=1e-2, fisher_kind="empirical",
                                  fisher_points=["pretrained", "finetuned"], permute_seed=0, baseline_lr={"full": 1e-4}),
    },
    "full": {
        "common": dict(model=EMBEDDED, data=EMBEDDED, tasks=list(EMBEDDED_TASKS), epochs=3, batch_size=32,
                       max_train_samples=None, max_eval_samples=None, device="auto"),
        "01_change_analysis": dict(seeds=[0, 1, 2], lr=5e-5, layernorm_lr=1e-3),
        "02_peft_comparison": dict(select_on="validation", seeds=[0, 1, 2], methods=PEFT_METHODS,
                                   lr_grid={"full": FULL_LRS, "default": PEFT_LRS}),
        "03_fisher_subsets": dict(seeds=[0, 1, 2], fractions=[0.5, 1, 2, 5, 10, 20, 50, 100],
                                  control_fractions=[0.5, 1, 2, 5, 10, 20, 50], fisher_samples=1024,
                                  cv_fractions=[1, 5, 20], folds=3, lr=1e-2, fisher_kind="empirical",
                                  fisher_points=["pretrained", "head-warmup", "finetuned"], permute_seed=0,
                                  baseline_lr={"full": 5e-5}),
    },
    "paper": {
        "common": dict(model="bert-large-cased", data=HUB_GLUE, tasks=["cola", "sst2", "mrpc", "stsb", "rte"],
                       epochs=3, batch_size=32, max_train_samples=None, max_eval_samples=None, device="auto"),
        "01_change_analysis": dict(seeds=[0, 1, 2, 3, 4], lr=2e-5, layernorm_lr=1e-3),
        "02_peft_comparison": dict(select_on="validation", seeds=[0, 1, 2, 3, 4], methods=PEFT_METHODS,
                                   lr_grid={"full": [1e-5, 2e-5, 3e-5, 5e-5], "default": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]}),
        "03_fisher_subsets": dict(seeds=[0, 1, 2, 3, 4], fractions=[0.5, 1, 2, 5, 10, 20, 50, 100],
                                  control_fractions=[0.5, 1, 2, 5, 10, 20, 50], fisher_samples=1024,
                                  cv_fractions=[1, 5, 20], folds=3, lr=3e-3, fisher_kind="empirical",
                                  fisher_points=["pretrained", "head-warmup", "finetuned"], permute_seed=0,
                                  baseline_lr={"full": 2e-5}),
    },
}

RUN_FIELDS = ("model", "data", "epochs", "batch_size", "max_train_samples", "max_eval_samples", "device")


@dataclasses.dataclass(frozen=True)
class Params:
    """A notebook's resolved parameters (attribute access) and the RunConfig they imply."""

    notebook: str
    profile: str
    values: MappingProxyType

    def __getattr__(self, name):
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def run_config(self, **fields) -> RunConfig:
        """A RunConfig with the shared settings of this profile and the given fields."""
        return RunConfig(**{k: self.values[k] for k in RUN_FIELDS}, **fields)

    def table(self):
        import pandas as pd

        return pd.DataFrame({"parameter": list(self.values), "value": [repr(v) for v in self.values.values()]})


def resolve(notebook: str, profile: str, **overrides) -> Params:
    if profile not in PROFILES:
        raise LnftError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    spec = PROFILES[profile]
    if notebook not in spec:
        raise LnftError(f"profile {profile!r} has no parameters for notebook {notebook!r}")
    values = {**spec["common"], **spec[notebook]}
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise LnftError(f"unknown parameter(s) {unknown} for {notebook}; allowed: {sorted(values)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Params(notebook, profile, MappingProxyType(values))
