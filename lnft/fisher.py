"""Diagonal Fisher information of every LayerNorm element (paper section 3): computation and caching.
Which elements to train from it, and the experiment built on that, live in ``lnft.subsets``.

F_i = mean over examples of (∂ log p(y|x) / ∂θ_i)², with per-example gradients:
- ``empirical`` (the paper's): y is the true label; for STS-B regression the squared-error loss gradient;
- ``expected``: Σ_c p(c|x) (∂ log p(c|x)/∂θ_i)² over the classes (for regression, (∂ prediction)², the
  Fisher of a unit-variance Gaussian).
Where the Fisher is taken (``FISHER_AT``) matters: at ``pretrained`` the head is freshly initialised, so
p(y|x) ≈ 1/num_labels for every example and the ranking barely depends on the labels; ``head-warmup``
(the head trained alone first) and ``finetuned`` (after all-LayerNorm fine-tuning) read a trained head
(and LayerNorms) from the run store. Why the labels barely matter at a fresh head: for a classifier the
per-example gradient of log p(y|x) with respect to any parameter below the logits is
Σ_c (1[c = y] − p(c|x)) ∂z_c; for two classes that is ±(1 − p(y|x)) ∂(z_1 − z_0), so its square is
p(other class|x)² (∂(z_1 − z_0))²: the label only reweights each example, by p(other class|x)², and at
p ≈ ½ every weight is ≈ ¼ whatever the label. A trained model (p far from ½) reweights strongly.
Which examples (``EXAMPLES``): ``train`` = slices of the run's training split (fine for the pre-trained
point, which has fit nothing); ``held-out`` = slices of the train file the start run neither trained on
nor selected its checkpoint on (a fine-tuned model fits its own training examples, which then contribute
almost nothing, so its Fisher there rests on a few misfit ones).
Label control (``relabelled``): every example gets another label — binary 1 − y, multi-class a different
class drawn per example, regression the targets shuffled across examples (a shuffle, not a relabelling:
some targets land near their own value).
Three ways to get the per-example gradients, tested to agree:
- ``hooks`` (the default everywhere, fastest, no warnings): one batched forward and backward; a
  LayerNorm's per-example gradients are exact closed forms of what passes through it
  (∂γ = Σ_t g_t ⊙ x̂_t, ∂β = Σ_t g_t, with g the gradient at the LayerNorm's output), because in eval
  mode the examples of a batch do not interact;
- ``vmap``: ``torch.func`` (``vmap`` of ``grad`` over the examples of a padded batch, chunked, with a ready
  4-D additive attention mask, since transformers' mask handling cannot run under vmap);
- ``loop``: one unpadded example at a time, the reference.
Precision: ``fisher_for_task`` runs the forward in the run's resolved precision (``RunConfig.precision``:
bf16 autocast where training uses it), like training and evaluation. Kept in fp32 on purpose: the
LayerNorms themselves and their inputs (torch's autocast keeps layer_norm in fp32), the log-likelihood
(log-softmax of the logits cast to fp32; the head's output itself carries bf16's ~3 significant digits),
the per-example gradients and x̂ the hooks combine; the squares and their sum over examples are
accumulated in float64.
"""
from __future__ import annotations

import functools
import hashlib
import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.func import functional_call, grad, vmap

from .components import describe, naming
from .errors import LnftError
from .methods import layernorm_param_names
from .models import accepts, autocast

KINDS = ("empirical", "expected")
FISHER_AT = ("pretrained", "head-warmup", "finetuned")
ALGORITHMS = ("hooks", "vmap", "loop")
EXAMPLES = ("train", "held-out")
ADDITIVE_MASK_FAMILIES = ("bert", "electra")  # vmap/loop's ready 4-D additive mask is read as such (tested: bert)


# ------------------------------------------------------------------ per-example gradients
def _log_likelihood(logits: torch.Tensor, target: torch.Tensor, regression: bool) -> torch.Tensor:
    """log p(target | x) for one example (up to a constant for regression)."""
    if regression:
        return -0.5 * (logits[0] - target[0]) ** 2
    return (torch.log_softmax(logits, -1) * target).sum()  # target: one-hot


@dataclass
class FisherResult:
    values: dict[str, torch.Tensor]  # LN parameter name -> Fisher of each element (float64)
    n_examples: int
    kind: str
    seconds: float
    per_example: torch.Tensor | None = None  # [examples, elements] float32, names sorted (see flat_names)


def flat_names(values: dict[str, torch.Tensor]) -> list[str]:
    """The order of the elements in ``FisherResult.per_example``: tensors by sorted name, each flattened."""
    return sorted(values)


def relabelled(labels, num_labels: int, regression: bool, seed: int) -> list:
    """The label control's labels: every example gets another one — binary 1 − y, multi-class a different
    class drawn per example (uniform over the others), regression the targets shuffled across examples."""
    rng = np.random.default_rng(seed)
    labels = list(labels)
    if regression:
        return [labels[i] for i in rng.permutation(len(labels))]
    if num_labels == 2:
        return [1 - int(y) for y in labels]
    return [int((int(y) + rng.integers(1, num_labels)) % num_labels) for y in labels]


def fisher_diagonal(model, batches, *, regression: bool, num_labels: int, kind: str = "empirical",
                    algorithm: str = "hooks", chunk_size: int | None = 32, device=None,
                    progress: bool = False, per_example: bool = False, precision: str = "fp32") -> FisherResult:
    """Fisher of every LayerNorm element over the examples of ``batches`` (padded dicts from the Collator).
    ``per_example``: also keep each example's contribution (``FisherResult.per_example``, for resampling);
    ``precision`` (resolved: fp32 or bf16) is the forward's, as in training."""
    import time

    if kind not in KINDS:
        raise LnftError(f"unknown Fisher kind {kind!r}; allowed: {', '.join(KINDS)}")
    if algorithm not in ALGORITHMS:
        raise LnftError(f"unknown Fisher algorithm {algorithm!r}; allowed: {', '.join(ALGORITHMS)}")
    from .progress import progress_bar

    if algorithm != "hooks":
        from .components import family_of

        if family_of(model).name not in ADDITIVE_MASK_FAMILIES:
            raise LnftError(f"Fisher algorithm {algorithm!r} passes BERT's additive 4-D attention mask, which "
                            f"model family {family_of(model).name!r} reads otherwise; allowed: hooks")
    started = time.perf_counter()
    device = device or next(model.parameters()).device
    model.eval()
    names = layernorm_param_names(model)
    ln = {n: p.detach() for n, p in model.named_parameters() if n in set(names)}
    frozen = {n: p.detach() for n, p in model.named_parameters() if n not in ln}
    frozen.update({n: b for n, b in model.named_buffers()})
    total = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in ln.items()}
    count, rows = 0, []
    classes = range(num_labels) if (kind == "expected" and not regression) else [None]

    with_types = accepts(model, "token_type_ids")

    def per_example(ln_params, input_ids, token_type_ids, mask, target, cls):
        types = {"token_type_ids": token_type_ids[None]} if with_types else {}
        out = functional_call(model, {**frozen, **ln_params},
                              kwargs=dict(input_ids=input_ids[None], attention_mask=mask[None], **types))
        logits = out.logits[0].float()
        if kind == "expected" and regression:
            value = logits[0]  # the prediction itself: Fisher of a unit-variance Gaussian
        elif cls is not None:
            onehot = torch.nn.functional.one_hot(torch.tensor(cls, device=logits.device), num_labels).float()
            value = _log_likelihood(logits, onehot, regression)
        else:
            value = _log_likelihood(logits, target, regression)
        return value, torch.softmax(logits, -1).detach()

    for batch in progress_bar(batches, enabled=progress, desc=f"Fisher ({kind}, {algorithm})"):
        batch = {k: v.to(device) for k, v in batch.items()}
        target = batch["labels"].float()[:, None] if regression else \
            torch.nn.functional.one_hot(batch["labels"], num_labels).float()
        token_type_ids = batch.get("token_type_ids", torch.zeros_like(batch["input_ids"]))
        mine = {n: 0 for n in sorted(total)}  # this batch's per-example contributions (per_example only)
        for cls in classes:
            with autocast(precision, device):
                grads, probs = _gradients(algorithm, model, batch, token_type_ids, target, cls, kind, regression,
                                          num_labels, per_example, ln, chunk_size)
            weight = probs[:, cls].double() if cls is not None else torch.ones(len(target), dtype=torch.float64,
                                                                                device=target.device)
            for name, g in grads.items():
                w = weight.view(-1, *([1] * (g.dim() - 1)))
                contribution = w * g.double() ** 2
                total[name] += contribution.sum(0)
                if per_example:
                    mine[name] = mine[name] + contribution.reshape(len(contribution), -1)
        if per_example:
            rows.append(torch.cat([mine[n] for n in sorted(total)], 1).float().cpu())
        count += len(batch["input_ids"])
    values = {n: (t / max(count, 1)).detach().cpu() for n, t in total.items()}
    return FisherResult(values, count, kind, time.perf_counter() - started,
                        torch.cat(rows) if per_example and rows else None)


def _gradients(algorithm, model, batch, token_type_ids, target, cls, kind, regression, num_labels, per_example, ln,
               chunk_size):
    """Per-example LayerNorm gradients of one batch by ``algorithm``: {name: [examples, *shape]}, probs."""
    if algorithm == "hooks":
        grads, probs = _hooks(model, batch, token_type_ids, target, cls, kind, regression, num_labels)
    elif algorithm == "vmap":
        mask = additive_mask(batch["attention_mask"], next(model.parameters()).dtype)
        fn = vmap(grad(lambda p, i, t, m, y: per_example(p, i, t, m, y, cls), has_aux=True),
                  in_dims=(None, 0, 0, 0, 0), chunk_size=chunk_size)
        with warnings.catch_warnings():  # known and harmless: attention runs unbatched under vmap
            warnings.filterwarnings("ignore", category=UserWarning,
                                    message="There is a performance drop because we have not yet "
                                            "implemented the batching rule")
            grads, probs = fn(ln, batch["input_ids"], token_type_ids, mask, target)
    else:
        grads, probs = _loop(per_example, ln, batch, token_type_ids, target, cls)
    return grads, probs


def _hooks(model, batch, token_type_ids, target, cls, kind, regression, num_labels):
    """Per-example LayerNorm gradients from one batched backward (see the module docstring)."""

    ln_names = {n.rsplit(".", 1)[0] for n in layernorm_param_names(model)}
    modules = {name: m for name, m in model.named_modules() if name in ln_names}
    seen, handles = {}, []  # module name -> [(x̂, output)] per call (ALBERT's shared layer runs many times)

    def hook(name):
        def capture(module, inputs, output):
            x = inputs[0].float()
            mean = x.mean(-1, keepdim=True)
            var = x.var(-1, unbiased=False, keepdim=True)
            seen.setdefault(name, []).append((((x - mean) * torch.rsqrt(var + module.eps)).detach(), output))
        return capture

    for name, module in modules.items():
        handles.append(module.register_forward_hook(hook(name)))
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    for module in modules.values():
        module.weight.requires_grad_(True)  # so that the LayerNorm outputs are part of the graph
    try:
        with torch.enable_grad():
            types = {"token_type_ids": token_type_ids} if accepts(model, "token_type_ids") else {}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **types).logits.float()
            if kind == "expected" and regression:
                values = logits[:, 0]
            elif regression:
                values = -0.5 * (logits[:, 0] - target[:, 0]) ** 2
            else:
                chosen = target if cls is None else torch.nn.functional.one_hot(
                    torch.full((len(logits),), cls, device=logits.device), num_labels).float()
                values = (torch.log_softmax(logits, -1) * chosen).sum(-1)
            calls = [(name, xhat, out) for name in seen for xhat, out in seen[name]]
            n = len(logits)
            # a per-example output is [examples, tokens, hidden]; DeBERTa's relative-position LN gives
            # [positions, hidden], whose first size may equal the batch size by chance
            batched = [c for c in calls if c[2].dim() >= 3 and c[2].shape[0] == n]
            outs = torch.autograd.grad(values.sum(), [c[2] for c in batched], retain_graph=True)
            # a LayerNorm whose output all examples share (DeBERTa's relative-position LN): one backward
            # per example gives each example's gradient at that output
            shared = [c for c in calls if not (c[2].dim() >= 3 and c[2].shape[0] == n)]
            per_ex = [torch.autograd.grad(values[i], [c[2] for c in shared], retain_graph=True)
                      for i in range(n)] if shared else []
    finally:
        for h in handles:
            h.remove()
        for name_, p in model.named_parameters():
            p.requires_grad_(flags[name_])
    grads = {}

    def add(name, weight, bias):
        grads[f"{name}.weight"] = grads.get(f"{name}.weight", 0) + weight
        if getattr(modules[name], "bias", None) is not None:  # LayerNorm(bias=False), e.g. ModernBERT
            grads[f"{name}.bias"] = grads.get(f"{name}.bias", 0) + bias

    for (name, xhat, _), g in zip(batched, outs):
        g = g.float()
        reduce = tuple(range(1, g.dim() - 1))
        add(name, (g * xhat).sum(reduce), g.sum(reduce))
    for j, (name, xhat, _) in enumerate(shared):
        g = torch.stack([per_ex[i][j] for i in range(n)]).float()  # [examples, *output shape]
        reduce = tuple(range(1, g.dim() - 1))
        add(name, (g * xhat[None]).sum(reduce), g.sum(reduce))
    return grads, torch.softmax(logits.detach(), -1)


def _loop(per_example, ln, batch, token_type_ids, target, cls):
    """Reference: one unpadded example at a time, with the usual 2-D mask semantics (no padding at all)."""
    grads = {n: [] for n in ln}
    probs = []
    lengths = batch["attention_mask"].sum(-1).tolist()
    for i, length in enumerate(lengths):
        mask = torch.zeros(1, 1, length, dtype=next(iter(ln.values())).dtype, device=target.device)
        g, p = grad(per_example, has_aux=True)(ln, batch["input_ids"][i, :length], token_type_ids[i, :length],
                                               mask, target[i], cls)
        for n in ln:
            grads[n].append(g[n])
        probs.append(p)
    return {n: torch.stack(v) for n, v in grads.items()}, torch.stack(probs)


def additive_mask(attention_mask: torch.Tensor, dtype) -> torch.Tensor:
    """[batch, 1, 1, length] additive mask: 0 where attended, the dtype's minimum where padded."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


# ------------------------------------------------------------------ tidy frames
def mass_frame(fisher: dict[str, torch.Tensor], base_prefix: str | None = None, family=None,
               **labels) -> pd.DataFrame:
    """Fisher mass (sum over elements) per LayerNorm tensor: layer, component (emb/attn-out/output LN), kind.
    ``base_prefix``/``family``: the encoder's (``lnft.components``); guessed from the names when not given."""
    if base_prefix is None:
        base_prefix, guessed = naming(fisher)
        family = family or guessed
    rows = []
    for name, values in fisher.items():
        info = describe(name, base_prefix, family)
        rows.append({**labels, "layer": info.layer, "component": info.component, "kind": info.kind,
                     "fisher_mass": float(values.sum()), "n_elements": values.numel(), "name": name})
    frame = pd.DataFrame(rows)
    frame["layer"] = frame["layer"].astype("Int64")
    frame["share"] = frame["fisher_mass"] / frame["fisher_mass"].sum()
    return frame


# ------------------------------------------------------------------ one task end to end (cached)
def held_out_indices(cfg) -> np.ndarray:
    """Rows of the task's train file that a run of ``cfg`` neither trains on nor selects its checkpoint on
    (``lnft.data.make_splits`` takes validation first, then ``max_train_samples`` of the rest, from one
    permutation seeded by ``data_seed``; the rows after those), in that permutation's order."""
    from .pool import drawable_rows

    rows = drawable_rows(cfg)  # the whole file, or the rows outside a held-out pool (lnft.pool): never the pool
    n = len(rows)
    order = np.random.default_rng(cfg.seed if cfg.data_seed is None else cfg.data_seed).permutation(n)
    n_validation = max(1, int(round(cfg.validation_fraction * n)))
    used = len(order[n_validation:][: cfg.max_train_samples or None])
    return rows[order[n_validation + used:]]


def fisher_for_task(cfg, *, n_samples: int, folds: int = 1, kind: str = "empirical", at: str = "pretrained",
                    start=None, relabel: int | None = None, examples: str = "train", per_example: bool = False,
                    store=None, batch_size: int = 32, algorithm: str = "hooks",
                    progress: bool = False) -> dict[int, FisherResult]:
    """Fisher of each of ``folds`` disjoint slices of ``n_samples`` examples (fewer if there are fewer;
    the slices depend on ``cfg.data_seed`` only, so every seed sees the same data) for the model with
    ``cfg.seed``'s head at the point ``at``:
    ``pretrained``: the pre-trained encoder with the run's freshly initialised head;
    ``head-warmup`` / ``finetuned``: that model with the trained tensors of the run ``start`` (a head-only /
    all-LayerNorm RunConfig of the same task and seed), read from ``store`` or trained there first.
    ``examples``: ``train`` (the run's training split) or ``held-out`` (train-file rows that the start run,
    or ``cfg`` when there is none, neither trained on nor selected on: ``held_out_indices``).
    ``relabel``: a seed; every example gets another label (``relabelled``: the label-dependence control).
    ``per_example``: keep each example's contribution (for resampling). Results are cached next to the
    run store."""
    import json
    import time

    from datasets import DatasetDict
    from safetensors.torch import load_file, save_file

    from .data import Collator, length_grouped_batches, load_raw, load_task_data, target_scale, tokenize
    from .models import load_model, load_tokenizer, resolve_device
    from .tasks import get_task
    from .train import seed_everything

    if at not in FISHER_AT:
        raise LnftError(f"unknown Fisher point {at!r}; allowed: {', '.join(FISHER_AT)}")
    if kind not in KINDS:
        raise LnftError(f"unknown Fisher kind {kind!r}; allowed: {', '.join(KINDS)}")
    if algorithm not in ALGORITHMS:
        raise LnftError(f"unknown Fisher algorithm {algorithm!r}; allowed: {', '.join(ALGORITHMS)}")
    if examples not in EXAMPLES:
        raise LnftError(f"unknown Fisher examples {examples!r}; allowed: {', '.join(EXAMPLES)}")
    cfg = cfg.validate()
    if at == "pretrained" and start is not None:
        raise LnftError("Fisher point 'pretrained' takes no start run; allowed: start=None")
    if at != "pretrained":
        if start is None or store is None:
            raise LnftError(f"Fisher point {at!r} needs start (the run it reads) and store")
        start = start.validate()
        wanted = {"head-warmup": "head", "finetuned": "layernorm"}[at]
        if (start.task, start.seed, start.method) != (cfg.task, cfg.seed, wanted):
            raise LnftError(f"Fisher point {at!r} needs a {wanted!r} run of task {cfg.task!r}, seed {cfg.seed}; "
                            f"got {start.method!r}, task {start.task!r}, seed {start.seed}")
    key = json.dumps([cfg.run_id(), n_samples, folds, kind, at, start.run_id() if start else None,
                      relabel, examples, per_example, algorithm, batch_size, _source_digest()], sort_keys=True)
    if start is not None and getattr(store, "ledger", None) is not None:  # cached or not, the ledger keeps the
        store.trained_tensors(store.get_or_run(start, progress=progress))  # start tensors a re-render needs
    cache_dir = store.fisher_dir if store is not None else None
    stem = hashlib.sha256(key.encode()).hexdigest()[:16]
    if cache_dir and all(os.path.isfile(os.path.join(cache_dir, f"{stem}-{f}.safetensors")) for f in range(folds)):
        out = {}
        for f in range(folds):
            path = os.path.join(cache_dir, f"{stem}-{f}.safetensors")
            with open(path + ".json") as fh:
                meta = json.load(fh)
            rows = load_file(path + ".per_example")["rows"] if per_example else None
            out[f] = FisherResult(load_file(path), meta["n_examples"], kind, meta["seconds"], rows)
        return out

    task = get_task(cfg.task)
    device = resolve_device(cfg.device)
    tokenizer = load_tokenizer(cfg.model)
    train = tokenize(load_task_data(cfg, task), tokenizer, task, cfg.max_seq_length)["train"]
    if examples == "train":
        pool, order = train, np.random.default_rng(cfg.data_seed).permutation(len(train))
    else:
        rows_ = held_out_indices(start or cfg)
        if len(rows_) < folds:
            raise LnftError(f"no held-out examples for the Fisher of {cfg.task!r}: the run trains on all "
                            f"{cfg.max_train_samples or 'the'} train-file rows outside validation; allowed: a start "
                            "run with max_train_samples below the train file (lnft.subsets.start_config does this)")
        rows_ = rows_[: folds * n_samples]  # the first rows of the permutation: the folds read nothing else
        held = DatasetDict({"train": load_raw(cfg.data, task)["train"].select(rows_)})
        pool, order = tokenize(held, tokenizer, task, cfg.max_seq_length)["train"], np.arange(len(rows_))
    per_fold = min(n_samples, len(pool) // folds)
    seed_everything(cfg.seed)
    model = load_model(cfg.model, task.num_labels, cfg.pooling)
    if start is not None:
        trained = store.trained_tensors(store.get_or_run(start, progress=progress))  # derived data or weights
        unexpected = model.load_state_dict(trained, strict=False).unexpected_keys
        if unexpected or not trained:  # a silent mismatch would give the pre-trained Fisher under another name
            raise LnftError(f"the trained tensors of run {start.run_id()} do not fit the model "
                            f"({len(trained)} tensors, unexpected: {unexpected[:3]}); allowed: a run of this model")
    model.to(device)
    collate = Collator(tokenizer, task.is_regression, *target_scale(train, task, cfg.standardize_targets))
    out = {}  # regression targets on the scale the training loss sees
    for f in range(folds):
        subset = pool.select(order[f * per_fold:(f + 1) * per_fold])
        labels = list(subset["label"][:])
        if relabel is not None:
            labels = relabelled(labels, task.num_labels, task.is_regression, relabel)
        rows = [{**subset[i], "label": labels[i]} for i in range(len(subset))]
        batches = [collate([rows[i] for i in idx]) for idx in
                   length_grouped_batches(subset["length"], batch_size, generator=None)]
        started = time.perf_counter()
        result = fisher_diagonal(model, batches, regression=task.is_regression, num_labels=task.num_labels,
                                 kind=kind, algorithm=algorithm, device=device, progress=progress,
                                 per_example=per_example, precision=cfg.precision)
        result.seconds = time.perf_counter() - started
        out[f] = result
        if cache_dir:
            os.makedirs(cache_dir, exist_ok=True)
            path = os.path.join(cache_dir, f"{stem}-{f}.safetensors")
            if per_example:
                save_file({"rows": result.per_example.contiguous()}, path + ".per_example")
            with open(path + ".json", "w") as fh:
                json.dump({"n_examples": result.n_examples, "seconds": result.seconds, "key": key}, fh)
            save_file({n: v.contiguous() for n, v in result.values.items()}, path + ".tmp")
            os.replace(path + ".tmp", path)
    return out


def mean_fisher(results: dict[int, FisherResult]) -> dict[str, torch.Tensor]:
    """Fisher over the union of the folds' examples (example-weighted mean of the fold Fishers)."""
    total = sum(r.n_examples for r in results.values())
    names = next(iter(results.values())).values
    return {n: sum(r.values[n] * r.n_examples for r in results.values()) / total for n in names}


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
    """This module's source: a cached Fisher is reused only while the code that computed it is unchanged
    (the run id already covers the training path, not this file)."""
    with open(__file__, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]
