"""Names for the parts of a BERT-style model, shared by methods, change analysis and Fisher.

A parameter name such as ``bert.encoder.layer.3.output.LayerNorm.weight`` is mapped to
(group="layer", layer=3, component="output LN", kind="weight"). Works for BERT/RoBERTa-style
checkpoints of any depth, and for names inside a peft wrapper.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# module path inside a transformer layer -> short component label, in forward order
LAYER_COMPONENTS = {
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attn-out dense",
    "attention.output.LayerNorm": "attn-out LN",
    "intermediate.dense": "intermediate",
    "output.dense": "output dense",
    "output.LayerNorm": "output LN",
}
EMBEDDING_COMPONENTS = {
    "word_embeddings": "word emb",
    "position_embeddings": "position emb",
    "token_type_embeddings": "token-type emb",
    "LayerNorm": "emb LN",
}
POOLER_COMPONENTS = {"dense": "pooler"}
COMPONENT_ORDER = [*LAYER_COMPONENTS.values(), *EMBEDDING_COMPONENTS.values(), *POOLER_COMPONENTS.values()]
LAYERNORM_COMPONENTS = ("emb LN", "attn-out LN", "output LN")

_LAYER_RE = re.compile(r"(?:^|\.)encoder\.layers?\.(\d+)\.(.+)$")
_PEFT_PARTS = re.compile(r"\.(?:base_layer|ln_tuning_layers\.default|modules_to_save\.default|original_module)(?=\.)")


@dataclass(frozen=True)
class ParamInfo:
    name: str
    group: str  # "embeddings", "layer", "pooler", "head" or "other"
    layer: int | None
    component: str
    kind: str  # "weight" or "bias"

    @property
    def is_layernorm(self) -> bool:
        return self.component in LAYERNORM_COMPONENTS


def clean_name(name: str) -> str:
    """The plain model name of a parameter seen through a peft wrapper."""
    name = name.removeprefix("base_model.model.")
    return _PEFT_PARTS.sub("", name)


def describe(name: str, base_prefix: str = "bert") -> ParamInfo:
    plain = clean_name(name)
    module, _, kind = plain.rpartition(".")
    if module.startswith(base_prefix + "."):
        inner = module[len(base_prefix) + 1:]
    else:
        inner = None
    if inner is None:
        return ParamInfo(name, "head", None, "head", kind)
    match = _LAYER_RE.search(inner)
    if match:
        sub = match.group(2)
        return ParamInfo(name, "layer", int(match.group(1)), LAYER_COMPONENTS.get(sub, sub), kind)
    if inner.startswith("embeddings."):
        sub = inner.removeprefix("embeddings.")
        return ParamInfo(name, "embeddings", None, EMBEDDING_COMPONENTS.get(sub, sub), kind)
    if inner.startswith("pooler."):
        sub = inner.removeprefix("pooler.")
        return ParamInfo(name, "pooler", None, POOLER_COMPONENTS.get(sub, sub), kind)
    return ParamInfo(name, "other", None, inner, kind)


def base_prefix(model) -> str:
    """The attribute holding the pre-trained encoder (``bert``, ``roberta``...); the rest is the head."""
    inner = getattr(model, "get_base_model", lambda: model)()
    return getattr(inner, "base_model_prefix", "bert")
