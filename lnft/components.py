"""Names for the parts of a transformer encoder, per architecture family, shared by methods, change
analysis and Fisher.

A parameter name such as ``bert.encoder.layer.3.output.LayerNorm.weight`` is mapped to
(group="layer", layer=3, component="output LN", kind="weight") by its family's map (``FAMILIES``, keyed
by ``config.model_type``). Every family uses the same paper labels, so a DistilBERT ``sa_layer_norm``
and a BERT ``attention.output.LayerNorm`` are both "attn-out LN". Adding a family is one ``Family``
entry; ``tests/test_families.py`` builds a tiny model of each family and checks its map.

Which parameters are LayerNorm parameters is decided by MODULE TYPE (``nn.LayerNorm`` or one of the
family's own LayerNorm classes, see ``layernorm_param_names``), never by a name: a map that labels a
non-LayerNorm module "... LN" is caught by the tests, and a model of an unknown type still gets every
LayerNorm right (the generic rule: LayerNorms by type, other parts keep their module path, one warning).

ALBERT shares one layer's weights across all its forward passes: its parameters exist once, under
``albert_layer_groups.0.albert_layers.0``, and are counted as **layer 0** (with ``num_hidden_groups`` > 1,
group g is layer g). Change analysis and Fisher therefore show ALBERT with one layer.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from torch import nn

# the paper's component labels, in forward order (what the tables and figures show)
LAYER_LABELS = ("query", "key", "value", "attn-out dense", "attn-out LN", "intermediate", "output dense", "output LN")
EMBEDDING_LABELS = ("word emb", "position emb", "token-type emb", "emb LN", "emb projection",
                    "rel-pos emb", "rel-pos LN", "rel-pos bias")
POOLER_LABELS = ("pooler",)
COMPONENT_ORDER = [*LAYER_LABELS, *EMBEDDING_LABELS, *POOLER_LABELS]
LAYERNORM_COMPONENTS = ("emb LN", "attn-out LN", "output LN", "rel-pos LN")

_BERT_LAYER = {
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attn-out dense",
    "attention.output.LayerNorm": "attn-out LN",
    "intermediate.dense": "intermediate",
    "output.dense": "output dense",
    "output.LayerNorm": "output LN",
}
_BERT_EMBEDDINGS = {
    "embeddings.word_embeddings": "word emb",
    "embeddings.position_embeddings": "position emb",
    "embeddings.token_type_embeddings": "token-type emb",
    "embeddings.LayerNorm": "emb LN",
}
_LAYER_RE = r"encoder\.layer\.(\d+)\.(.+)"


@dataclass(frozen=True)
class Family:
    """One architecture family. Module paths are relative to the encoder (``model.base_model_prefix``)."""

    model_types: tuple[str, ...]  # config.model_type values that share this map
    layer: str  # regex on the module path inside the encoder: group 1 = layer index, group 2 = path in the layer
    layer_components: dict[str, str]  # path inside a layer -> label (LAYER_LABELS), forward order
    embeddings: dict[str, str]  # module path -> label, parts before (or beside) the layer stack
    pooler: dict[str, str] = field(default_factory=dict)  # module path -> "pooler" (inside the encoder only)
    lora_targets: tuple[str, ...] = ("query", "value")  # LoRA's default: the attention query and value
    layernorm_classes: tuple[str, ...] = ()  # the family's own LayerNorm module classes, beyond nn.LayerNorm
    # IA³'s default: keys, values and the FFN's second layer (scaled on its input: "feedforward"); peft's own
    # mapping where it has one (BERT/RoBERTa/DeBERTa-v2: its "output.dense" suffix also hits the attention
    # output dense, which peft then scales on its input as well), else the IA³ paper's rule
    ia3_targets: tuple[str, ...] = ("key", "value", "output.dense")
    ia3_feedforward: tuple[str, ...] = ("output.dense",)

    @property
    def name(self) -> str:
        return self.model_types[0]

    def label(self, inner: str) -> tuple[str, int | None, str] | None:
        """(group, layer, component) of a module path inside the encoder; None if the map lacks it."""
        match = re.fullmatch(self.layer, inner)
        if match and match.group(2) in self.layer_components:
            return "layer", int(match.group(1)), self.layer_components[match.group(2)]
        if inner in self.embeddings:
            return "embeddings", None, self.embeddings[inner]
        if inner in self.pooler:
            return "pooler", None, self.pooler[inner]
        return None


FAMILIES: dict[str, Family] = {}
for _family in [
    Family(("bert", "roberta", "xlm-roberta"), _LAYER_RE, _BERT_LAYER, _BERT_EMBEDDINGS,
           {"pooler.dense": "pooler"}),
    Family(("electra",), _LAYER_RE, _BERT_LAYER, {**_BERT_EMBEDDINGS, "embeddings_project": "emb projection"}),
    Family(("deberta-v2",), _LAYER_RE,
           {**_BERT_LAYER, "attention.self.query_proj": "query", "attention.self.key_proj": "key",
            "attention.self.value_proj": "value"},
           {**_BERT_EMBEDDINGS, "embeddings.embed_proj": "emb projection",
            "encoder.rel_embeddings": "rel-pos emb",
            "encoder.LayerNorm": "rel-pos LN"},  # normalises the relative-position embeddings (norm_rel_ebd)
           lora_targets=("query_proj", "value_proj"), ia3_targets=("key_proj", "value_proj", "output.dense")),
    Family(("distilbert",), r"transformer\.layer\.(\d+)\.(.+)",
           {"attention.q_lin": "query", "attention.k_lin": "key", "attention.v_lin": "value",
            "attention.out_lin": "attn-out dense", "sa_layer_norm": "attn-out LN", "ffn.lin1": "intermediate",
            "ffn.lin2": "output dense", "output_layer_norm": "output LN"},
           {"embeddings.word_embeddings": "word emb", "embeddings.position_embeddings": "position emb",
            "embeddings.LayerNorm": "emb LN"},
           lora_targets=("q_lin", "v_lin"), ia3_targets=("k_lin", "v_lin", "ffn.lin2"),
           ia3_feedforward=("ffn.lin2",)),
    Family(("albert",), r"encoder\.albert_layer_groups\.(\d+)\.albert_layers\.0\.(.+)",
           {"attention.query": "query", "attention.key": "key", "attention.value": "value",
            "attention.dense": "attn-out dense", "attention.LayerNorm": "attn-out LN", "ffn": "intermediate",
            "ffn_output": "output dense", "full_layer_layer_norm": "output LN"},
           {**_BERT_EMBEDDINGS, "encoder.embedding_hidden_mapping_in": "emb projection"},
           {"pooler": "pooler"}, ia3_targets=("attention.key", "attention.value", "ffn_output"),
           ia3_feedforward=("ffn_output",)),
    Family(("mpnet",), _LAYER_RE,
           {"attention.attn.q": "query", "attention.attn.k": "key", "attention.attn.v": "value",
            "attention.attn.o": "attn-out dense", "attention.LayerNorm": "attn-out LN",
            "intermediate.dense": "intermediate", "output.dense": "output dense", "output.LayerNorm": "output LN"},
           {"embeddings.word_embeddings": "word emb", "embeddings.position_embeddings": "position emb",
            "embeddings.LayerNorm": "emb LN", "encoder.relative_attention_bias": "rel-pos bias"},
           {"pooler.dense": "pooler"}, lora_targets=("q", "v"), ia3_targets=("attn.k", "attn.v", "output.dense")),
]:
    for _type in _family.model_types:
        FAMILIES[_type] = _family

# an unknown model type: LayerNorms by module type, every other part keeps its module path
GENERIC = Family(("generic",), r"(?:encoder\.|transformer\.)?(?:layers?|h|block)\.(\d+)\.(.+)", {}, {}, lora_targets=(),
                 ia3_targets=(), ia3_feedforward=())
SUPPORTED = ("bert", "roberta", "xlm-roberta", "electra", "deberta-v2", "distilbert", "albert", "mpnet")

_PEFT_PARTS = re.compile(r"\.(?:base_layer|ln_tuning_layers\.default|modules_to_save\.default|original_module)(?=\.)")
_warned: set[str] = set()


@dataclass(frozen=True)
class ParamInfo:
    name: str
    group: str  # "embeddings", "layer", "pooler", "head" or "other"
    layer: int | None
    component: str
    kind: str  # "weight" or "bias"
    layernorm: bool = False  # a LayerNorm parameter (by module type when from ``describe_model``)

    @property
    def is_layernorm(self) -> bool:
        return self.layernorm


def family_for(model_type: str | None, warn: bool = True) -> Family:
    """The map of a ``config.model_type``; the generic rule for others, with one warning line on stderr per
    type and process."""
    if model_type in FAMILIES:
        return FAMILIES[model_type]
    if warn and model_type not in _warned:
        _warned.add(model_type)
        print(f"lnft: warning: no component map for model_type {model_type!r} (known: {', '.join(SUPPORTED)}); "
              "generic rule: LayerNorm modules by type, other parts keep their module path", file=sys.stderr,
              flush=True)
    return GENERIC


def family_of(model) -> Family:
    inner = getattr(model, "get_base_model", lambda: model)()
    return family_for(getattr(getattr(inner, "config", None), "model_type", None))


def clean_name(name: str) -> str:
    """The plain model name of a parameter seen through a peft wrapper."""
    name = name.removeprefix("base_model.model.")
    return _PEFT_PARTS.sub("", name)


def describe(name: str, base_prefix: str = "bert", family: Family | None = None) -> ParamInfo:
    """Label a parameter from its name alone. ``family`` defaults to the one whose prefix is
    ``base_prefix`` (BERT's map for ``bert``/``roberta``). LayerNorm membership here comes from the map's
    labels; ``describe_model`` decides it by module type, which is what training uses."""
    family = family or _FAMILY_BY_PREFIX.get(base_prefix, GENERIC)
    plain = clean_name(name)
    module, _, kind = plain.rpartition(".")
    if not module.startswith(base_prefix + "."):
        return ParamInfo(name, "head", None, "head", kind)
    inner = module[len(base_prefix) + 1:]
    labelled = family.label(inner)
    if labelled is not None:
        group, layer, component = labelled
        return ParamInfo(name, group, layer, component, kind, component in LAYERNORM_COMPONENTS)
    layernorm = False  # unknown to the map: only ``describe_model`` (module types) can say
    match = re.fullmatch(family.layer, inner) or re.fullmatch(GENERIC.layer, inner)
    if match:
        return ParamInfo(name, "layer", int(match.group(1)), match.group(2), kind, layernorm)
    if inner.startswith("embeddings."):
        return ParamInfo(name, "embeddings", None, inner.removeprefix("embeddings."), kind, layernorm)
    if inner.startswith("pooler"):
        return ParamInfo(name, "pooler", None, inner, kind, layernorm)
    return ParamInfo(name, "other", None, inner, kind, layernorm)


_FAMILY_BY_PREFIX = {"bert": FAMILIES["bert"], "roberta": FAMILIES["roberta"], "electra": FAMILIES["electra"],
                     "deberta": FAMILIES["deberta-v2"], "distilbert": FAMILIES["distilbert"],
                     "albert": FAMILIES["albert"], "mpnet": FAMILIES["mpnet"]}


def base_prefix(model) -> str:
    """The attribute holding the pre-trained encoder (``bert``, ``roberta``...); the rest is the head."""
    inner = getattr(model, "get_base_model", lambda: model)()
    return getattr(inner, "base_model_prefix", "bert")


def layernorm_param_names(model: nn.Module) -> list[str]:
    """Parameters of LayerNorm modules, found by type: ``nn.LayerNorm`` or the family's own classes."""
    extra = set(family_of(model).layernorm_classes)
    return [f"{mod_name}.{p_name}" if mod_name else p_name
            for mod_name, mod in model.named_modules()
            if isinstance(mod, nn.LayerNorm) or type(mod).__name__ in extra
            for p_name, _ in mod.named_parameters(recurse=False)]


def describe_model(model: nn.Module) -> dict[str, ParamInfo]:
    """Every parameter of ``model`` (peft-wrapped or not) labelled by its family's map, with LayerNorm
    membership by module type."""
    import dataclasses

    family, prefix = family_of(model), base_prefix(model)
    layernorms = set(layernorm_param_names(model))
    return {name: dataclasses.replace(describe(name, prefix, family), layernorm=name in layernorms)
            for name, _ in model.named_parameters()}


def naming(names) -> tuple[str, Family]:
    """(encoder prefix, family) guessed from parameter names alone, for tables built from saved tensors:
    the most common first name part (the encoder holds nearly all parameters)."""
    from collections import Counter

    parts = Counter(clean_name(n).split(".", 1)[0] for n in names)
    prefix = parts.most_common(1)[0][0] if parts else "bert"
    return prefix, _FAMILY_BY_PREFIX.get(prefix, GENERIC)
