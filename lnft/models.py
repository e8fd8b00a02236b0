"""Model and tokenizer loading, what a model's family and default targets are, device choice and precision
choice.

Where a model comes from (the embedded all-MiniLM-L6-v2, a local directory, a hub name), how that is
checked and fingerprinted is its source's (``lnft.sources.model_source``); every load goes through the
source's ``from_pretrained``. The components of an encoder are named by family in ``lnft.components``.
"""
from __future__ import annotations

import functools
import os

import torch

from .constants import PRECISIONS
from .errors import LnftError
from .sources import allowed_models, model_source, read_config


def display_name(name: str) -> str:
    """The name tables and messages show for a model (``RunConfig.model``)."""
    return model_source(name).display


@functools.lru_cache(maxsize=8)
def layernorm_shapes(name: str) -> dict[str, tuple]:
    """The LayerNorm parameters of a model as ``load_model`` names them, with their shapes, from its config
    alone (meta device): masks are checked against these before any weight is read."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from .components import layernorm_param_names

    try:
        config = AutoConfig.from_pretrained(model_source(name).path)
        with torch.device("meta"):
            model = AutoModelForSequenceClassification.from_config(config)
    except Exception as exc:  # noqa: BLE001 — a config transformers cannot build: one line, never a traceback
        raise LnftError(f"model {name!r}: its config does not describe a model transformers can build "
                        f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}); allowed: "
                        f"{allowed_models()}") from None
    shapes = dict(model.named_parameters())
    return {n: tuple(shapes[n].shape) for n in layernorm_param_names(model)}


@functools.lru_cache(maxsize=8)
def model_type(name: str) -> str | None:
    """``config.model_type`` of a model (its config only; no weights are read)."""
    source = model_source(name)
    source.check()
    if os.path.isdir(source.path):
        return read_config(source.path).get("model_type")
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(source.path).model_type


def family(name: str, warn: bool = True):
    """The component map (``lnft.components.Family``) of a model."""
    from .components import family_for

    return family_for(model_type(name), warn=warn)


def default_lora_targets(name: str) -> tuple[str, ...]:
    """The family's default LoRA targets; for an unknown type, peft's default for it, if it has one."""
    targets = family(name, warn=False).lora_targets
    if not targets:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

        targets = tuple(PEFT_DEFAULTS.get(model_type(name)) or ())
    if not targets:
        leaves = sorted({m.rsplit(".", 1)[-1] for m in adaptable_module_names(name)})
        raise LnftError(f"no default LoRA targets for model {display_name(name)!r} (model_type "
                        f"{model_type(name)!r}); allowed: --lora-targets with module names among {', '.join(leaves)}")
    return targets


def default_ia3_targets(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(targets, feedforward) of IA³ for a model: its family's default; for an unknown type, peft's."""
    fam = family(name, warn=False)
    targets, feedforward = fam.ia3_targets, fam.ia3_feedforward
    if not targets:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FF
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS

        targets, feedforward = tuple(TARGETS.get(model_type(name)) or ()), tuple(FF.get(model_type(name)) or ())
    if not targets:
        leaves = sorted({m.rsplit(".", 1)[-1] for m in adaptable_module_names(name)})
        raise LnftError(f"no default IA3 targets for model {display_name(name)!r} (model_type "
                        f"{model_type(name)!r}); allowed: a model of a known family, or ia3_targets among "
                        f"{', '.join(leaves)}")
    return tuple(targets), tuple(feedforward)


@functools.lru_cache(maxsize=4)
def adaptable_module_names(name: str) -> tuple[str, ...]:
    """Names of the Linear/Embedding/Conv modules of a model (what LoRA can target), built from its
    config on the meta device: no weights are read."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(model_source(name).path)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    kinds = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d)
    return tuple(n for n, m in model.named_modules() if isinstance(m, kinds) or type(m).__name__ == "Conv1D")


def check_module_suffixes(name: str, targets, what: str) -> None:
    """Each target must name (as peft matches it: whole name or last dotted parts) a module of the model."""
    modules = adaptable_module_names(name)
    for target in targets:
        if not any(m == target or m.endswith("." + target) for m in modules):
            leaves = sorted({m.rsplit(".", 1)[-1] for m in modules})
            raise LnftError(f"{what} {target!r} matches no Linear/Embedding module of model {display_name(name)!r}; "
                            f"allowed: {', '.join(leaves)}")


def accepts(model, argument: str) -> bool:
    """Whether the model's forward takes ``argument`` (DistilBERT, for one, has no token types)."""
    import inspect

    inner = getattr(model, "get_base_model", lambda: model)()
    return argument in inspect.signature(inner.forward).parameters


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise LnftError("device 'cuda' requested but CUDA is not available here; allowed: auto, cpu")
    if device not in ("cpu", "cuda"):
        raise LnftError(f"invalid device {device!r}; allowed: auto, cpu, cuda")
    return torch.device(device)


# What ``precision="auto"`` picks on a CPU, by its bf16 capability (``cpu_bf16_capability``): bf16 autocast
# only where it was measured faster than fp32 (one MiniLM-L6 training step at batch 32, interleaved A/B in one
# process, 2 threads; ``cpu_bf16_step_speedup_<method>`` in benchmarks/precision.py, numbers in benchmarks/README.md):
# - "amx_bf16" (Intel Xeon, AMX tiles and AVX512-BF16): 1.38-1.65x faster, full and layernorm (issue 23) -> bf16
# - "avx512_bf16" without AMX (AMD EPYC Zen 5): 2.6-2.7x faster, full and layernorm at 32 x 64 on idle
#   cores; about 1.0 (0.8-1.3 by method) with the 2 cores oversubscribed ~7x (README, "Precision")      -> bf16
# - "none": no native bf16 instruction, bf16 only emulated: 0.12x layernorm, 0.45x head (this machine with
#   oneDNN and ATen limited to AVX2)                                                                      -> fp32
# A capability not in the table (e.g. an ARM CPU's "bf16" feature, not measured) stays fp32. If a rerun of
# the benchmark on idle cores measures a capability slower, its entry here becomes "fp32".
CPU_PRECISION = {"amx_bf16": "bf16", "avx512_bf16": "bf16", "none": "fp32"}


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (x86 ``flags``, ARM ``Features``) from /proc/cpuinfo; empty where unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_bf16_capability(flags=None) -> str:
    """The CPU's native bf16 capability, detected from its flags (not guessed from the vendor):
    ``amx_bf16`` (AMX tiles), ``avx512_bf16`` (AVX512-BF16 dot products) or ``none``."""
    flags = cpu_flags() if flags is None else frozenset(flags)
    for capability in ("amx_bf16", "avx512_bf16"):
        if capability in flags:
            return capability
    return "none"


def auto_precision(device_type: str, capability: str | None = None, cuda_bf16: bool | None = None) -> str:
    """What ``precision="auto"`` resolves to: on CUDA bf16 where the GPU computes bf16 natively (not
    emulated), on CPU by ``CPU_PRECISION`` for the detected capability; fp32 elsewhere."""
    if device_type == "cuda":
        if cuda_bf16 is None:
            cuda_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        return "bf16" if cuda_bf16 else "fp32"
    if device_type == "cpu":
        return CPU_PRECISION.get(cpu_bf16_capability() if capability is None else capability, "fp32")
    return "fp32"


def resolve_precision(precision: str, device: str = "auto") -> str:
    """``fp32`` or ``bf16`` (autocast) for a run on ``device``; one-line error for anything else."""
    if precision not in PRECISIONS:
        raise LnftError(f"invalid precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
    device_type = resolve_device(device).type
    if precision == "auto":
        return auto_precision(device_type)
    if precision == "bf16" and device_type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise LnftError(f"precision 'bf16' requested but GPU {torch.cuda.get_device_name()!r} does not compute bf16 "
                        "natively; allowed: auto, fp32")
    return precision


def autocast(precision: str, device):
    """The forward's context: bf16 autocast (matrix products in bf16; LayerNorm, softmax and losses stay in
    fp32 by torch's autocast rules; parameters, gradients and AdamW state stay fp32) or nothing (fp32)."""
    from contextlib import nullcontext

    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise LnftError(f"invalid resolved precision {precision!r}; allowed: fp32, bf16")
    return nullcontext()


def load_model(name: str, num_labels: int, pooling: str = "auto"):
    """A sequence-classification model; regression when ``num_labels == 1`` (STS-B). ``pooling``: what the
    head reads (``lnft.pooling``): "pooler" (the model class's own head) or "mean" (a linear classifier on
    the mean over tokens; the encoder's pooler removed) or "auto" (``auto_pooling``, as ``RunConfig`` resolves it).

    The checkpoint is read once per process; each call gets a fresh copy whose task head is initialised
    from the current torch RNG state, so a seeded caller gets the same head every time."""
    import copy

    if pooling == "auto":
        pooling = auto_pooling(name)
    if pooling not in ("pooler", "mean"):
        raise LnftError(f"invalid pooling {pooling!r}; allowed: auto, pooler, mean")
    with torch.random.fork_rng(devices=[]):  # a first (uncached) load must not move the caller's RNG
        pretrained = _load_pretrained(name, num_labels)
    model = copy.deepcopy(pretrained)
    if pooling == "mean":
        from .pooling import mean_pooled

        model = mean_pooled(model, num_labels)
    init_head(model)
    return model


@functools.lru_cache(maxsize=8)
def auto_pooling(name: str) -> str:
    """What ``pooling="auto"`` resolves to for a model (``lnft.pooling.detect``: a sentence-transformers mean
    pooling config beside the weights, or an untrained BERT/ALBERT pooler -> "mean"; else "pooler"). A hub
    model is read from the local cache where it is there; otherwise "pooler"."""
    from .pooling import detect

    source = model_source(name)
    directory = source.path
    if not os.path.isdir(directory):
        directory = _cached_hub_dir(name)
    return detect(directory, model_type(name)) if directory else "pooler"


def _cached_hub_dir(name: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
        return os.path.dirname(found) if isinstance(found, str) else None
    except Exception:  # noqa: BLE001 — no cache, no directory: the model class's own head
        return None


def init_head(model) -> None:
    """Initialise every module outside the pre-trained encoder (the classifier) as BERT does:
    linear weights ~ N(0, initializer_range), biases 0; anything else by its own reset_parameters()."""
    prefix = getattr(model, "base_model_prefix", "bert")
    std = getattr(model.config, "initializer_range", 0.02)
    for name, module in model.named_modules():
        if not name or name.startswith(prefix) or not any(True for _ in module.parameters(recurse=False)):
            continue
        with torch.no_grad():
            if isinstance(module, torch.nn.Linear):
                module.weight.normal_(0.0, std)
                if module.bias is not None:
                    module.bias.zero_()
            elif hasattr(module, "reset_parameters"):
                module.reset_parameters()


@functools.lru_cache(maxsize=4)
def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    return _from_pretrained(AutoTokenizer, name)


@functools.lru_cache(maxsize=4)
def _load_pretrained(name: str, num_labels: int):
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected here
    hf_logging.disable_progress_bar()  # a bar per load would flood notebooks
    try:
        return _from_pretrained(AutoModelForSequenceClassification, name, num_labels=num_labels,
                                problem_type="regression" if num_labels == 1 else "single_label_classification")
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _from_pretrained(cls, name: str, **kwargs):
    return model_source(name).from_pretrained(cls, **kwargs)
