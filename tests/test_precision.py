"""RunConfig.precision: what ``auto`` resolves to, where bf16 autocast applies and where fp32 is kept."""
import dataclasses

import pytest
import torch

from lnft import RunConfig, models, profiles
from lnft.errors import LnftError


@pytest.mark.parametrize("device, capability, cuda_bf16, expected", [
    ("cpu", "amx_bf16", None, "bf16"),  # Intel Xeon with AMX: measured faster (issue 23)
    ("cpu", "avx512_bf16", None, "bf16"),  # AVX512-BF16 without AMX (AMD EPYC Zen 5): measured faster
    ("cpu", "none", None, "fp32"),  # no native bf16: emulated, slower
    ("cpu", "bf16", None, "fp32"),  # a capability not in the table (ARM's feature name): not measured, fp32
    ("cuda", None, True, "bf16"),
    ("cuda", None, False, "fp32"),  # a GPU that would only emulate bf16
    ("mps", None, None, "fp32"),
])
def test_auto_resolution_table(device, capability, cuda_bf16, expected):
    assert models.auto_precision(device, capability, cuda_bf16) == expected


def test_capability_is_read_from_the_flags_not_the_vendor(tmp_path):
    assert models.cpu_bf16_capability({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}) == "amx_bf16"
    assert models.cpu_bf16_capability({"avx2", "avx512f", "avx512_bf16"}) == "avx512_bf16"
    assert models.cpu_bf16_capability({"avx2", "avx512f"}) == "none"
    assert models.cpu_bf16_capability(set()) == "none"
    intel = tmp_path / "cpuinfo"
    intel.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx2 avx512_bf16 amx_bf16 amx_tile\n"
                     "processor\t: 1\nflags\t\t: fpu avx2 avx512_bf16 amx_bf16 amx_tile\n")
    assert models.cpu_flags(str(intel)) >= {"avx512_bf16", "amx_bf16"}
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert models.cpu_bf16_capability(models.cpu_flags(str(arm))) == "none"
    assert models.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_validate_resolves_auto_and_the_run_id_carries_the_resolved_precision():
    here = models.auto_precision("cpu")
    auto = RunConfig(device="cpu")
    assert auto.precision == "auto" and auto.validate().precision == here
    assert auto.run_id() == dataclasses.replace(auto, precision=here).run_id()  # auto = what it resolves to
    fp32, bf16 = (dataclasses.replace(auto, precision=p) for p in ("fp32", "bf16"))
    assert fp32.validate().precision == "fp32" and bf16.validate().precision == "bf16"
    assert fp32.run_id() != bf16.run_id()


@pytest.mark.parametrize("bad", ["fp16", "BF16", "", None, 32])
def test_bad_precision_is_one_line_error(bad):
    with pytest.raises(LnftError, match=r"invalid precision .*; allowed: auto, fp32, bf16$"):
        RunConfig(precision=bad).validate()


def test_every_profile_sets_precision_and_runs_use_it():
    named = {"quick": "bf16", "standard": "fp32"}  # the profiles with a committed ledger (lnft/profiles.py)
    for name, spec in profiles.PROFILES.items():
        assert spec["common"]["precision"] == named.get(name, "auto"), name
    P = profiles.resolve("02_peft_comparison", "smoke", precision="fp32")
    assert P.run_config(task="sst2", method="layernorm").precision == "fp32"


@pytest.mark.parametrize("profile", ["quick", "standard"])
def test_a_ledger_profiles_run_ids_do_not_depend_on_the_machines_bf16(profile, monkeypatch):
    """A report's committed ledger must serve on any machine: under "auto" a CPU without native bf16 gave every
    run another id than the bf16 machine that recorded it, so nothing was served and everything retrained."""
    from lnft.plan import notebook_configs

    def ids(capability):
        monkeypatch.setattr(models, "cpu_bf16_capability", lambda flags=None: capability)
        return [p.config.run_id() for p in notebook_configs("01_change_analysis", profile) if p.known]

    amx, none = ids("amx_bf16"), ids("none")
    assert amx and amx == none
    assert RunConfig(device="cpu").validate().precision == "fp32"  # "auto" still follows the machine (none here)


def test_bf16_autocast_keeps_layernorm_loss_and_gradients_in_fp32():
    """What bf16 means in lnft: the matrix products run in bf16; LayerNorms, the loss, the parameters,
    their gradients (and so AdamW's state) stay fp32."""
    torch.manual_seed(0)
    model = models.load_model("embedded", 2)
    dtypes = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: dtypes.update({n: o.dtype}))
             for n, m in model.named_modules() if n in ("bert.encoder.layer.0.attention.self.query",
                                                        "bert.encoder.layer.0.output.LayerNorm")]
    ids = torch.randint(1000, 2000, (2, 8))
    with models.autocast("bf16", "cpu"):
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([0, 1])).loss
    loss.backward()
    for h in hooks:
        h.remove()
    assert dtypes == {"bert.encoder.layer.0.attention.self.query": torch.bfloat16,
                      "bert.encoder.layer.0.output.LayerNorm": torch.float32}
    assert loss.dtype == torch.float32
    assert all(p.dtype == p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)
    with models.autocast("fp32", "cpu"):
        assert model(input_ids=ids).logits.dtype == torch.float32
