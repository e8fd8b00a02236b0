"""The fine-tuning methods: which parameters train. Adding a method is one entry in ``METHODS``.

Shared rules, the same for every method:
- the task head (``classifier``: every parameter outside the pre-trained encoder) always trains;
- the pooler belongs to the pre-trained encoder and follows the method's rule like any other encoder
  module (``full`` trains it, ``bitfit`` trains its bias, the LayerNorm methods leave it frozen);
- weight decay never reaches LayerNorm parameters, biases, IA³ scaling vectors or masked tensors (decaying a
  gain pulls it toward 0; a masked-out element must stay bit-identical).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .components import GENERIC, ParamInfo, describe_model, family_of, layernorm_param_names  # noqa: F401
from .errors import LnftError


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    default_lr: float
    trains: Callable[[ParamInfo], bool]  # which encoder parameters train (the head always does)
    wrap: Callable | None = None  # model, config -> wrapped model (peft methods)
    masked: bool = False  # elements chosen by a boolean mask per LayerNorm tensor (a mask file)
    select: Callable | None = None  # model, infos, cfg -> {name: bool mask}: elements drawn by the method itself


def _wrap_lora(model, cfg):
    import warnings

    from peft import LoraConfig, get_peft_model

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    targets = list(cfg.lora_targets or family_of(model).lora_targets)  # validate() resolves (), see RunConfig
    if not targets:
        raise LnftError("lora_targets is empty and the model's family has no default; allowed: module name suffixes")
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, bias="none")
    return get_peft_model(model, lora)  # no task_type: the head is ours to train, not a peft copy


def _wrap_ia3(model, cfg):
    import warnings

    from peft import IA3Config, get_peft_model

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    family = family_of(model)
    targets = list(cfg.ia3_targets or family.ia3_targets)  # validate() resolves (), see RunConfig
    feedforward = list(cfg.ia3_feedforward if cfg.ia3_targets else family.ia3_feedforward)
    if not targets:
        raise LnftError("ia3_targets is empty and the model's family has no default; allowed: module name suffixes")
    ia3 = IA3Config(target_modules=targets, feedforward_modules=feedforward, init_ia3_weights=True)
    return get_peft_model(model, ia3)  # no task_type: the head is ours to train, not a peft copy


def _nothing(info: ParamInfo) -> bool:
    return False


def _per_channel(info: ParamInfo) -> bool:
    """A per-channel parameter of the encoder: a LayerNorm gain or bias, or any bias term."""
    return info.group != "head" and (info.is_layernorm or info.kind == "bias")


def _random_channels(model: nn.Module, infos: dict[str, ParamInfo], cfg) -> dict[str, torch.Tensor]:
    """Exactly as many elements as the model's LayerNorms hold, drawn uniformly without replacement from
    all per-channel elements (biases and LayerNorm elements mixed), by a generator seeded with the run's
    seed: the same seed draws the same set, on any machine."""
    params = dict(model.named_parameters())
    pool = [n for n, i in infos.items() if _per_channel(i)]
    size = sum(params[n].numel() for n, i in infos.items() if i.is_layernorm)
    if not size:
        raise LnftError("method 'random-channels' draws as many elements as the model's LayerNorms hold, and this "
                        "model has no LayerNorm lnft recognises; allowed: a model with LayerNorms")
    numels = [params[n].numel() for n in pool]
    flat = torch.zeros(sum(numels), dtype=torch.bool)
    flat[torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(cfg.seed))[:size]] = True
    masks = {}
    for name, chunk in zip(pool, flat.split(numels)):
        if chunk.any():
            masks[name] = chunk.reshape(params[name].shape).clone()
    return masks


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("full", "every parameter", 3e-5, lambda i: True),
    Method("layernorm", "all LayerNorm gains and biases", 1e-3, lambda i: i.is_layernorm),
    Method("layernorm-output", "the output LayerNorm of each layer (after the FFN)", 1e-3,
           lambda i: i.component == "output LN"),
    Method("layernorm-attention", "the attention-output LayerNorm of each layer", 1e-3,
           lambda i: i.component == "attn-out LN"),
    Method("bitfit", "all bias terms (BitFit)", 1e-3, lambda i: i.kind == "bias"),
    Method("lora", "low-rank adapters on the target modules (peft LoRA)", 1e-3, _nothing, wrap=_wrap_lora),
    Method("head", "nothing but the task head (control)", 1e-3, _nothing),
    Method("layernorm-masked", "selected elements of LayerNorm tensors (boolean masks)", 1e-3,
           lambda i: i.is_layernorm, masked=True),
    # why LayerNorm? ablations and comparators of LayerNorm's size
    Method("layernorm-gain", "the LayerNorm gains only (ablation)", 1e-3,
           lambda i: i.is_layernorm and i.kind == "weight"),
    Method("layernorm-bias", "the LayerNorm biases only (ablation)", 1e-3,
           lambda i: i.is_layernorm and i.kind == "bias"),
    Method("random-channels", "random bias/LayerNorm elements, as many as LayerNorm's (drawn per seed)", 1e-3,
           _per_channel, select=_random_channels),
    Method("ia3", "learned scaling of keys, values and the FFN (peft IA3)", 1e-3, _nothing, wrap=_wrap_ia3),
]}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise LnftError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
    return METHODS[name]


@dataclass
class Prepared:
    """A model ready to train, and what the trainer and the store need to know about it."""

    model: nn.Module
    trainable: dict[str, nn.Parameter]  # name -> parameter (names as in model.named_parameters())
    masks: dict[str, torch.Tensor]  # name -> bool mask, for masked methods
    no_decay: set[str]
    trainable_params: int  # trainable elements (masked-out elements excluded)
    total_params: int  # elements of the underlying model (adapters excluded)


def prepare(model: nn.Module, cfg) -> Prepared:
    method = get_method(cfg.method)
    check_family(method, family_of(model))
    total = sum(p.numel() for p in model.parameters())
    model.requires_grad_(False)
    if method.wrap is not None:
        model = method.wrap(model, cfg)
    infos = describe_model(model)  # the family's labels; LayerNorms by module type
    if (method.name.startswith("layernorm") or method.select) and not any(i.is_layernorm for i in infos.values()):
        norms = sorted({type(m).__name__ for m in model.modules() if "norm" in type(m).__name__.lower()})
        raise LnftError(f"method {method.name!r}: this model has no LayerNorm module lnft recognises (nn.LayerNorm "
                        f"or a family's class; found {', '.join(norms) or 'no normalisation module'}), so it would "
                        "train the head alone; allowed: a model with LayerNorms, or add its class to its Family")
    if method.masked:
        masks = load_masks(cfg.mask_path, model)
    else:
        masks = method.select(model, infos, cfg) if method.select else {}
    chosen = method.masked or method.select is not None  # only tensors with a selected element train
    for name, param in model.named_parameters():
        info = infos[name]
        if info.group == "head" or (method.trains(info) and (not chosen or name in masks)):
            param.requires_grad_(True)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    for name, mask in masks.items():
        trainable[name].register_hook(_masking_hook(mask))
    # no decay: LayerNorm parameters, biases, IA³'s scaling vectors (gains like LayerNorm's, initialised at 1),
    # and every masked tensor (AdamW decays masked-out elements too, whatever their gradient)
    no_decay = {n for n in trainable if infos[n].is_layernorm or infos[n].kind == "bias" or ".ia3_l." in n} | set(masks)
    count = sum(int(masks[n].sum()) if n in masks else p.numel() for n, p in trainable.items())
    return Prepared(model, trainable, masks, no_decay, count, total)


def param_groups(prepared: Prepared, cfg) -> list[dict]:
    """AdamW's parameter groups: the body at ``cfg.lr`` and the task head at ``cfg.head_lr`` (validated: lr when
    unset), each split by weight decay (``no_decay``). Empty groups are left out."""
    infos = describe_model(prepared.model)
    head_lr = cfg.lr if cfg.head_lr is None else cfg.head_lr
    groups = []
    for is_head, lr in ((False, cfg.lr), (True, head_lr)):
        for decays in (True, False):
            params = [p for n, p in prepared.trainable.items()
                      if (infos[n].group == "head") == is_head and (n not in prepared.no_decay) == decays]
            if params:
                groups.append({"params": params, "lr": lr, "weight_decay": cfg.weight_decay if decays else 0.0,
                               "name": ("head" if is_head else "body") + ("" if decays else " (no decay)")})
    return groups


# methods that select a component by its label: the generic rule (unknown model type) has no labels
NEEDS_MAP = ("layernorm-output", "layernorm-attention")


def check_family(method: Method, family) -> None:
    """A method that picks one LayerNorm of the layer needs the family's map; without it, it would
    silently train the head alone."""
    if method.name in NEEDS_MAP and family is GENERIC:
        from .components import SUPPORTED

        raise LnftError(f"method {method.name!r} needs a component map, and this model's type has none; "
                        f"allowed: a model of family {', '.join(SUPPORTED)}, or methods "
                        f"{', '.join(m for m in METHODS if m not in NEEDS_MAP)}")


def _masking_hook(mask: torch.Tensor):
    """Zero the gradient outside ``mask`` on the gradient's own device and dtype, so the model may be
    moved (``.to(device)``, ``.double()``) before or after ``prepare``."""
    cache: dict[tuple, torch.Tensor] = {}

    def hook(grad: torch.Tensor) -> torch.Tensor:
        key = (grad.device, grad.dtype)
        if key not in cache:
            cache[key] = mask.to(device=grad.device, dtype=grad.dtype)
        return grad * cache[key]

    return hook


def load_masks(path: str, model: nn.Module) -> dict[str, torch.Tensor]:
    """Masks keyed by LayerNorm parameter name; a tensor with no selected element stays frozen."""
    from safetensors.torch import load_file

    masks = load_file(path)
    params = dict(model.named_parameters())
    check_masks(path, masks, {n: tuple(params[n].shape) for n in layernorm_param_names(model)})
    return {n: m.bool() for n, m in masks.items() if bool(m.any())}


def check_masks(path: str, masks: dict[str, torch.Tensor], layernorms: dict[str, tuple]) -> None:
    """Every mask names a LayerNorm parameter (``layernorms``: name -> shape) and has its shape; used by
    ``RunConfig.validate`` (shapes from the model's config, before any weight loads) and ``load_masks``."""
    for name, mask in masks.items():
        if name not in layernorms:
            raise LnftError(f"mask file {path!r} names {name!r}, which is not a LayerNorm parameter of the model; "
                            f"allowed: names such as {next(iter(layernorms), '—')!r}")
        if tuple(mask.shape) != layernorms[name]:
            raise LnftError(f"mask for {name!r} has shape {tuple(mask.shape)}; allowed: {layernorms[name]}")


def save_masks(masks: dict[str, torch.Tensor], path: str) -> str:
    from safetensors.torch import save_file

    save_file({n: m.to(torch.uint8).contiguous() for n, m in sorted(masks.items())}, path)
    return path
