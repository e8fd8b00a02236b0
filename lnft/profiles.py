"""Named parameter sets for the notebooks: smoke (tests), quick (the default report, ~20 min on
2 CPU cores), full (all embedded tasks, full train sets, 3 seeds) and paper (bert-large-cased and hub
GLUE, 5 seeds, for a GPU machine with internet).

A notebook's ``parameters`` cell holds ``profile`` plus optional overrides (None = take the profile's
value); ``resolve`` merges them. The ``common`` part is shared by all notebooks so that their runs have
identical configs and the run store reuses them across notebooks.

Budgets: ``epochs`` is each method's maximum, ``{"full": E, "default": E_peft}`` (or one number for all);
``Params.run_config(method=...)`` picks it, so every notebook trains a method under the same protocol.
Methods with a few thousand parameters learn more slowly per step than full fine-tuning, so their budget
is several times longer; early stopping (``patience`` evaluations without improvement on the selection
split, one evaluation every ``eval_every`` steps) ends a run once it has converged.
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
        "common": dict(model=EMBEDDED, data=EMBEDDED, tasks=["sst2", "stsb"], epochs={"full": 1, "default": 2},
                       patience=2, eval_every=1, batch_size=16, max_train_samples=32, max_eval_samples=32,
                       device="auto", precision="auto"),
        "01_change_analysis": dict(seeds=[0], lr=1e-4, layernorm_lr=1e-2),
        "02_peft_comparison": dict(select_on="validation", seeds=[0, 1], methods=PEFT_METHODS,
                                   lr_grid={"full": [1e-4], "head": [1e-2, 3e-3], "default": [1e-2]}),
        "03_fisher_subsets": dict(tasks=["sst2"], seeds=[0, 1], fractions=[20, 100], control_fractions=[5, 20], cv_fractions=[],
                                  fisher_samples=16, folds=2, lr=1e-2, fisher_kind="empirical",
                                  fisher_points=["pretrained", "finetuned"], permute_seed=0, baseline_lr={"full": 1e-4}),
    },
    "quick": {
        # 500 examples = 16 steps per epoch: full ≤ 96 steps, the others ≤ 192; the step arithmetic that
        # keeps notebook 2 under 10 minutes is in the README ("Profiles")
        "common": dict(model=EMBEDDED, data=EMBEDDED, tasks=["sst2", "stsb"], epochs={"full": 6, "default": 12},
                       patience=3, eval_every=24, batch_size=32, max_train_samples=500, max_eval_samples=400,
                       device="auto", precision="auto"),
        "01_change_analysis": dict(seeds=[0], lr=1e-4, layernorm_lr=1e-2),
        # quick trims to fit 20 minutes on 2 CPU cores: notebook 2 compares LayerNorm with full fine-tuning
        # and the head-only control at convergence (BitFit, LoRA: smoke and full); SST-2 only in 3
        "02_peft_comparison": dict(select_on="validation", seeds=[0, 1], methods=["full", "layernorm", "head"],
                                   lr_grid={"full": [1e-4], "default": [1e-2]}),
        # nb 3: 2 points x 2 seeds x 1 fraction x 3 rules (random shared by the points) = 10 masked runs;
        # the all-LayerNorm, head and full runs are notebook 2's; no union/intersection runs (full, paper)
        "03_fisher_subsets": dict(tasks=["sst2"], seeds=[0, 1], fractions=[1, 100], control_fractions=[1, 10],
                                  cv_fractions=[], fisher_samples=256, folds=2, lr=1e-2, fisher_kind="empirical",
                                  fisher_points=["pretrained", "finetuned"], permute_seed=0, baseline_lr={"full": 1e-4}),
    },
    "full": {
        "common": dict(model=EMBEDDED, data=EMBEDDED, tasks=list(EMBEDDED_TASKS), epochs={"full": 3, "default": 10},
                       patience=3, eval_every=None, batch_size=32, max_train_samples=None, max_eval_samples=None,
                       device="auto", precision="auto"),
        "01_change_analysis": dict(seeds=[0, 1, 2], lr=5e-5, layernorm_lr=1e-3),
        "02_peft_comparison": dict(select_on="validation", seeds=[0, 1, 2, 3, 4], methods=PEFT_METHODS,
                                   lr_grid={"full": FULL_LRS, "default": PEFT_LRS}),
        "03_fisher_subsets": dict(seeds=[0, 1, 2], fractions=[0.5, 1, 2, 5, 10, 20, 50, 100],
                                  control_fractions=[0.5, 1, 2, 5, 10, 20, 50], fisher_samples=1024,
                                  cv_fractions=[1, 5, 20], folds=3, lr=1e-2, fisher_kind="empirical",
                                  fisher_points=["pretrained", "head-warmup", "finetuned"], permute_seed=0,
                                  baseline_lr={"full": 5e-5}),
    },
    "paper": {
        "common": dict(model="bert-large-cased", data=HUB_GLUE, tasks=["cola", "sst2", "mrpc", "stsb", "rte"],
                       epochs={"full": 3, "default": 10}, patience=3, eval_every=None, batch_size=32,
                       max_train_samples=None, max_eval_samples=None, device="auto", precision="auto"),
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

RUN_FIELDS = ("model", "data", "batch_size", "max_train_samples", "max_eval_samples", "patience", "eval_every",
              "device", "precision")


def method_epochs(epochs, method: str) -> int:
    """A method's maximum epochs from a budget: one number for all, or {method: epochs, "default": epochs}."""
    if not isinstance(epochs, dict):
        return epochs
    if method not in epochs and "default" not in epochs:
        raise LnftError(f"epochs {epochs!r} has no budget for method {method!r}; allowed: add it or a 'default'")
    return epochs.get(method, epochs.get("default"))


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
        """A RunConfig with the shared settings of this profile, the method's budget (maximum epochs) and
        the given fields (which win)."""
        method = fields.get("method", RunConfig.method)
        shared = {k: self.values[k] for k in RUN_FIELDS if k in self.values}
        return RunConfig(**{**shared, "epochs": method_epochs(self.values["epochs"], method), **fields})

    def budgets(self, methods=None):
        """Each method's budget as a tidy frame: maximum epochs, patience, evaluation interval."""
        import pandas as pd

        methods = methods or self.values.get("methods") or ["full", "layernorm"]
        every = self.values.get("eval_every")
        return pd.DataFrame([{"method": m, "max epochs": method_epochs(self.values["epochs"], m),
                              "patience (evaluations)": self.values.get("patience"),
                              "evaluate every (steps)": every if every else "epoch"} for m in methods])

    def table(self):
        import pandas as pd

        return pd.DataFrame({"parameter": list(self.values), "value": [repr(v) for v in self.values.values()]})


def resolve(notebook: str, profile: str, **overrides) -> Params:
    """``overrides`` may include ``data_dir`` (a local GLUE directory), which becomes ``data`` (absolute)."""
    import os

    data_dir = overrides.pop("data_dir", None)
    if data_dir is not None:
        overrides["data"] = os.path.abspath(os.path.expanduser(str(data_dir)))
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
    if isinstance(values.get("epochs"), dict):
        from .methods import METHODS

        bad = sorted(set(values["epochs"]) - set(METHODS) - {"default"})
        if bad:
            raise LnftError(f"epochs has budgets for unknown method(s) {bad}; allowed: {', '.join(METHODS)}, default")
    return Params(notebook, profile, MappingProxyType(values))
