"""What the task head reads: the model class's own path ("pooler") or the mean over tokens ("mean").

``AutoModelForSequenceClassification`` on a BERT (or ALBERT) checkpoint feeds the classifier through the
encoder's pooler, ``tanh(W · h_CLS + b)``. That pooler is pre-trained with next-sentence prediction in BERT's
own checkpoints, but a sentence-transformers checkpoint (the embedded all-MiniLM-L6-v2) never trained it: its
``pooler.dense.bias`` is all zeros, its weight has sd 0.009, and the checkpoint's own pooling (``1_Pooling``)
is the mean over tokens. Every arm that keeps the encoder frozen (head-only, LayerNorm, BitFit, LoRA, IA³)
then classifies through a random projection, while full fine-tuning trains it.

The rule (``detect``), applied by ``RunConfig.validate`` to ``pooling="auto"``:

1. a sentence-transformers pooling config beside the weights (``modules.json`` naming a ``Pooling`` module
   whose ``config.json`` sets ``pooling_mode_mean_tokens``; or a ``1_Pooling/config.json`` that does) ->
   ``"mean"``: the checkpoint was trained to be read that way;
2. else, for a family whose classifier reads the encoder's pooler (BERT, ALBERT): the pooler's tensors missing
   from the checkpoint, or its bias all zeros (BERT's initialisation, never moved by training) -> ``"mean"``;
3. else ``"pooler"``: the transformers head as the model class defines it (BERT's pre-trained NSP pooler, the
   paper's path; RoBERTa, ELECTRA, DistilBERT, DeBERTa, MPNet read [CLS] through a new dense layer that is part
   of the task head and trains in every arm).

With ``"mean"`` every arm's classifier is one new linear layer (dropout before it, as BERT's) on the masked
mean of the last hidden states; the encoder's pooler is removed (it no longer exists, so no arm trains it and
the counts leave it out). No extra trainable parameters beside the classifier.
"""
from __future__ import annotations

import inspect
import json
import os

import torch
from torch import nn

POOLINGS = ("auto", "pooler", "mean")
# families whose sequence-classification head reads the encoder's own pooler (the others build a new head)
POOLER_FAMILIES = ("bert", "albert")


def sentence_transformers_pooling(directory: str) -> str | None:
    """The pooling a sentence-transformers checkpoint declares beside its weights ("mean", "cls", "max", ...),
    or None when the directory holds no such config."""
    configs = []
    modules = os.path.join(directory, "modules.json")
    if os.path.isfile(modules):
        try:
            with open(modules, encoding="utf-8") as fh:
                entries = json.load(fh)
            configs += [os.path.join(directory, e.get("path", ""), "config.json") for e in entries
                        if isinstance(e, dict) and str(e.get("type", "")).endswith("Pooling")]
        except (OSError, ValueError):
            pass
    configs.append(os.path.join(directory, "1_Pooling", "config.json"))
    for path in configs:
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as fh:
                    config = json.load(fh)
            except (OSError, ValueError):
                continue
            for mode in ("mean_tokens", "cls_token", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens",
                         "lasttoken"):
                if config.get(f"pooling_mode_{mode}"):
                    return mode.split("_")[0] if mode != "mean_sqrt_len_tokens" else "mean_sqrt_len"
            if config.get("pooling_mode"):
                return str(config["pooling_mode"])
    return None


def pooler_untrained(directory: str, model_type: str | None) -> bool:
    """For a family whose classifier reads the encoder's pooler: the pooler is missing from the checkpoint's
    safetensors, or its bias is all zeros (never trained). False where the weights cannot be read here."""
    if model_type not in POOLER_FAMILIES:
        return False
    files = sorted(f for f in os.listdir(directory) if f.endswith(".safetensors")) if os.path.isdir(directory) else []
    if not files:
        return False
    from safetensors import safe_open

    names = {}
    for f in files:
        with safe_open(os.path.join(directory, f), framework="pt") as fh:
            names.update({k: f for k in fh.keys()})
    bias = next((k for k in names if k.endswith(("pooler.dense.bias", "pooler.bias"))), None)
    if bias is None:
        return True
    with safe_open(os.path.join(directory, names[bias]), framework="pt") as fh:
        return bool((fh.get_tensor(bias) == 0).all())


def detect(directory: str, model_type: str | None) -> str:
    """``"mean"`` or ``"pooler"`` for a model directory by the module's rule (1-3 above)."""
    declared = sentence_transformers_pooling(directory) if os.path.isdir(directory) else None
    if declared == "mean":
        return "mean"
    if declared is None and pooler_untrained(directory, model_type):
        return "mean"
    return "pooler"


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of the last hidden states over the tokens the mask keeps (sentence-transformers' rule). A 4-D
    additive mask (0 keep, a large negative drop; lnft.fisher passes one under vmap) is read back to 0/1."""
    if attention_mask.dim() == 4:
        attention_mask = (attention_mask[:, 0, 0, :] == 0)
    keep = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * keep).sum(1) / keep.sum(1).clamp(min=1e-9)


class MeanPooledClassifier(nn.Module):
    """A pre-trained encoder (kept under its own attribute, ``bert``, ``roberta``..., so parameter names are
    the checkpoint's) and a linear classifier on its masked mean pooling, with transformers' losses (MSE for
    one label, cross-entropy otherwise). peft wraps it like a transformers model (no task_type)."""

    def __init__(self, encoder: nn.Module, config, num_labels: int, prefix: str):
        super().__init__()
        self.config = config
        self.base_model_prefix = prefix
        self.num_labels = num_labels
        setattr(self, prefix, encoder)
        if getattr(encoder, "pooler", None) is not None:  # unused: removed, so no arm trains or counts it
            encoder.pooler = None
        rate = getattr(config, "classifier_dropout", None)
        rate = rate if rate is not None else getattr(config, "hidden_dropout_prob", getattr(config, "dropout", 0.1))
        self.dropout = nn.Dropout(rate)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        self._takes_types = "token_type_ids" in inspect.signature(encoder.forward).parameters

    @property
    def encoder_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        from transformers.modeling_outputs import SequenceClassifierOutput

        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        encoder_kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and self._takes_types:
            encoder_kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder_model(**encoder_kwargs, **kwargs).last_hidden_state
        logits = self.classifier(self.dropout(mean_pool(hidden, attention_mask)))
        loss = None
        if labels is not None:
            if self.num_labels == 1:
                loss = nn.functional.mse_loss(logits.squeeze(-1).float(), labels.float())
            else:
                loss = nn.functional.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


def mean_pooled(model: nn.Module, num_labels: int) -> MeanPooledClassifier:
    """The encoder of a transformers sequence-classification ``model`` under a mean-pooling classifier (the
    model's own head and the encoder's pooler are dropped)."""
    prefix = getattr(model, "base_model_prefix", "bert")
    return MeanPooledClassifier(getattr(model, prefix), model.config, num_labels, prefix)
