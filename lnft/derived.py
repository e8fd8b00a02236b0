"""A run's derived data: the little the analyses read from its weights, computed once when it is stored.

Why: the results ledger (``lnft.store.ledger``) keeps no weights, yet notebook 1 measures how far each
component moved, notebook 3 checks that masked-out elements never moved and starts Fisher passes from head-only
and all-LayerNorm runs. ``derive`` computes, from the trained tensors and the pre-trained model:
- ``changes``: per encoder tensor its component and Σ|Δθ|, ΣΔθ², Σθ_pre², elements (``lnft.changes.tensor_sums``):
  the change frame of any run, a few kilobytes;
- ``masked`` (masked methods): per mask tensor, the masked-out elements and how many of them changed;
- ``trained``: the trained tensors themselves, float32, exact (about 11 k elements, 45 kB, for an all-LayerNorm
  run on MiniLM): added only to the runs a Fisher pass starts from, when it first reads them (``keep_trained``;
  head-only and all-LayerNorm runs, ``START_METHODS``), so the ledger carries no tensors nobody reads.
A part that cannot be computed is named in ``errors`` (the run is still stored; the analysis then needs weights).
"""
from __future__ import annotations

import torch

FORMAT = 1
START_METHODS = ("head", "layernorm")  # lnft.subsets.start_config's methods
MAX_TRAINED_ELEMENTS = 100_000  # never a large tensor set in the ledger


def derive(config, trained: dict[str, torch.Tensor]) -> dict:
    """The derived data of a run of ``config`` whose trainable tensors are ``trained``."""
    from . import changes

    out: dict = {"format": FORMAT}
    errors = {}
    try:
        out["changes"] = changes.run_sums(config, trained)
    except Exception as exc:  # noqa: BLE001 — recorded, never fatal for the run
        errors["changes"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    if config.mask_path:
        try:
            out["masked"] = masked_check(config, trained)
        except Exception as exc:  # noqa: BLE001
            errors["masked"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    if errors:
        out["errors"] = errors
    return out


def masked_check(config, trained: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Per mask tensor: masked-out elements, and how many of them differ from the pre-trained value."""
    from safetensors.torch import load_file

    from .changes import pretrained_state

    pre = pretrained_state(config.model)
    out = {}
    for name, mask in sorted(load_file(config.mask_path).items()):
        mask = mask.bool()
        after = trained.get(name, pre[name])
        out[name] = {"masked_out": int((~mask).sum()), "changed": int((after[~mask] != pre[name][~mask]).sum())}
    return out


def keep_trained(config, trained: dict[str, torch.Tensor]) -> dict | None:
    """The ``trained`` part of a Fisher start run's derived data (None for other methods or large tensor sets)."""
    if config.method not in START_METHODS or sum(t.numel() for t in trained.values()) > MAX_TRAINED_ELEMENTS:
        return None
    from .store.ledger import encode

    return {n: encode(t.detach().cpu().float().numpy()) for n, t in sorted(trained.items())}


def trained_tensors(result) -> dict[str, torch.Tensor] | None:
    """The trained tensors a run's derived data holds (Fisher start runs), or None."""
    held = (getattr(result, "derived", None) or {}).get("trained")
    if not held:
        return None
    from .store.ledger import decode

    return {n: torch.from_numpy(decode(v).copy()) for n, v in held.items()}
