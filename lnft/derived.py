"""A run's derived data: the little the analyses read from its weights, computed once when it is stored.

Why: the results ledger (``lnft.store.ledger``) keeps no weights, yet notebook 1 measures how far each
component moved, notebook 3 checks that masked-out elements never moved and starts Fisher passes from head-only
and all-LayerNorm runs. ``derive`` computes, from the trained tensors and the pre-trained model:
- ``changes``: per encoder tensor its component and Σ|Δθ|, ΣΔθ², Σθ_pre², elements (``tensor_sums``): the
  change frame of any run (``lnft.changes.frame_from_sums``), a few kilobytes;
- ``masked`` (masked methods): per mask tensor, the masked-out elements and how many of them changed;
- ``trained``: the trained tensors themselves, float32, exact (about 11 k elements, 45 kB, for an all-LayerNorm
  run on MiniLM): added only to the runs a Fisher pass starts from, when it first reads them (``keep_trained``;
  head-only and all-LayerNorm runs, ``START_METHODS``), so the ledger carries no tensors nobody reads.
A part that cannot be computed is named in ``errors`` (the run is still stored; the analysis then needs weights).
The derived data names the source of this module (``source``): data derived by other code is not used
(``held``), and a change here makes reports stale as a change of run ids does (``lnft.staleness``).
Part of the core (it reads only components and models), so the store can call it; ``encode``/``decode`` keep
arrays compact and exact in JSON.
"""
from __future__ import annotations

import base64
import functools
import hashlib

import numpy as np
import torch

from .components import clean_name, describe, naming

FORMAT = 1
START_METHODS = ("head", "layernorm")  # lnft.subsets.start_config's methods
MAX_TRAINED_ELEMENTS = 100_000  # never a large tensor set in the ledger
GROUP_ORDER = ("embeddings", "layer", "pooler")  # the encoder's groups a change analysis compares (not the head)


def encode(array) -> dict:
    """An array as JSON: the smallest dtype that holds its values exactly (int8/int16/int32, float16/float32),
    little-endian bytes in base64."""
    array = np.asarray(array)
    candidates = {"i": ("int8", "int16", "int32"), "u": ("int8", "int16", "int32"), "b": ("int8",),
                  "f": ("float16", "float32")}.get(array.dtype.kind, ())
    chosen = array.dtype.newbyteorder("<")
    for name in candidates:
        small = array.astype(name)
        if np.array_equal(small.astype(array.dtype), array, equal_nan=array.dtype.kind == "f"):
            chosen = np.dtype(name).newbyteorder("<")
            break
    return {"dtype": array.dtype.str.lstrip("<>|="), "stored": chosen.str, "shape": list(array.shape),
            "data": base64.b64encode(np.ascontiguousarray(array.astype(chosen)).tobytes()).decode("ascii")}


def decode(value: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(value["data"]), dtype=np.dtype(value["stored"]))
    return raw.astype(value["dtype"]).reshape(value["shape"])


def derive(config, trained: dict[str, torch.Tensor]) -> dict:
    """The derived data of a run of ``config`` whose trainable tensors are ``trained``."""
    out: dict = {"format": FORMAT, "source": source_digest()}
    errors = {}
    try:
        out["changes"] = run_sums(config, trained)
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


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """This module's source: derived data made by other code is not used."""
    with open(__file__, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]


def held(result, part: str):
    """A part of a run's derived data, when it was derived by this code (else None: read the weights)."""
    derived = getattr(result, "derived", None) or {}
    return derived.get(part) if derived.get("source") == source_digest() else None


def masked_check(config, trained: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Per mask tensor: masked-out elements, and how many of them differ from the pre-trained value."""
    from safetensors.torch import load_file

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
    return {n: encode(t.detach().cpu().float().numpy()) for n, t in sorted(trained.items())}


def trained_tensors(result) -> dict[str, torch.Tensor] | None:
    """The trained tensors a run's derived data holds (Fisher start runs), or None."""
    tensors = held(result, "trained")
    if not tensors:
        return None
    return {n: torch.from_numpy(decode(v).copy()) for n, v in tensors.items()}


def effective_weights(trained: dict[str, torch.Tensor], pretrained: dict[str, torch.Tensor],
                      lora_scaling: float | None = None) -> dict[str, torch.Tensor]:
    """Trained tensors under plain model names; LoRA factors are merged into their base weight."""
    out = {}
    for name, tensor in trained.items():
        if ".lora_A." in name or ".lora_B." in name:
            continue
        out[clean_name(name)] = tensor
    for name, a in trained.items():
        if ".lora_A." not in name:
            continue
        b = trained[name.replace(".lora_A.", ".lora_B.")]
        base = clean_name(name.split(".lora_A.")[0]) + ".weight"
        out[base] = pretrained[base] + (b.double() @ a.double()).to(pretrained[base].dtype) * (lora_scaling or 1.0)
    return out


@functools.lru_cache(maxsize=2)
def _pretrained_cached(model: str) -> dict[str, torch.Tensor]:
    from .models import load_model

    return {n: p.detach().clone() for n, p in load_model(model, 2).named_parameters()}


def pretrained_state(model: str) -> dict[str, torch.Tensor]:
    """The pre-trained encoder's parameters (the head, freshly initialised, is ignored downstream)."""
    return _pretrained_cached(model)


def tensor_sums(pretrained: dict[str, torch.Tensor], finetuned: dict[str, torch.Tensor], *,
                base_prefix: str | None = None, family=None) -> list[dict]:
    """Per encoder tensor: its component and the sums the measures are made of (Σ|Δ|, ΣΔ², Σθ_pre², elements).
    A few kilobytes per run: the results ledger keeps them, so the change analysis needs no weights."""
    if base_prefix is None:
        base_prefix, guessed = naming(pretrained)
        family = family or guessed
    sums = []
    for name, before in pretrained.items():
        info = describe(name, base_prefix, family)
        if info.group not in GROUP_ORDER:
            continue
        after = finetuned.get(name, before)
        delta = after.double() - before.double()
        sums.append({"group": info.group, "layer": info.layer, "component": info.component, "kind": info.kind,
                     "abs_sum": float(delta.abs().sum()), "sq_sum": float((delta ** 2).sum()),
                     "ref_sq_sum": float((before.double() ** 2).sum()),
                     "ref_abs_sum": float(before.double().abs().sum()), "n_elements": before.numel()})
    return sums


def run_sums(config, trained: dict[str, torch.Tensor]) -> list[dict]:
    """``tensor_sums`` of a just-trained run (what the ledger records for the change analysis)."""
    pre = pretrained_state(config.model)
    scaling = config.lora_alpha / config.lora_r if config.method == "lora" else None
    prefix, family = encoder_naming(config.model)
    return tensor_sums(pre, effective_weights(trained, pre, scaling), base_prefix=prefix, family=family)


def encoder_naming(model: str):
    """(encoder prefix, component map) of a model, from the loaded model itself (cached by models)."""
    from .components import base_prefix
    from .models import _load_pretrained, family

    return base_prefix(_load_pretrained(model, 2)), family(model)
