"""``finetune(config)``: one fine-tuning run, readable top to bottom.

data -> model -> method -> AdamW + linear warm-up/decay over the budget (``epochs``, a maximum) ->
steps over length-grouped batches with per-batch padding -> every ``eval_every`` steps (default: every
epoch) an evaluation on the selection split (held-out validation, or dev) -> the best checkpoint is kept,
and ``patience`` evaluations without improvement end the run early -> RunResult + the trained tensors.
"""
from __future__ import annotations

import math
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import __version__, methods
from .config import RunConfig
from .data import Collator, iterate, length_grouped_batches, load_task_data, random_batches, target_scale, tokenize
from .errors import RunFailed
from .models import accepts, autocast, display_name, load_model, load_tokenizer, resolve_device
from .pool import SPLIT as POOL
from .progress import progress_bar
from .result import Predictions, RunResult, examples_digest, nonfinite
from .tasks import Task, get_task


@dataclass
class FinetuneOutput:
    result: RunResult
    trained: dict[str, torch.Tensor]  # the trainable tensors of the best checkpoint (all of them for full)
    model: torch.nn.Module  # the trained model, holding the best checkpoint's weights
    predictions: dict[str, Predictions] = None  # per-example, best checkpoint: validation, dev split(s), pool


def finetune(config: RunConfig, *, progress: bool = True, run_id: str | None = None) -> FinetuneOutput:
    started = time.perf_counter()
    cfg = config.validate()
    task = get_task(cfg.task)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)

    # ---- data
    tokenizer = load_tokenizer(cfg.model)
    raw = load_task_data(cfg, task)
    splits = tokenize(raw, tokenizer, task, cfg.max_seq_length)
    train_set = splits["train"]
    shift, scale = target_scale(train_set, task, cfg.standardize_targets)
    collate = Collator(tokenizer, task.is_regression, shift, scale)

    # ---- model and method
    seed_everything(cfg.seed)  # the head's initialisation does not depend on data loading
    prepared = methods.prepare(load_model(cfg.model, task.num_labels, cfg.pooling), cfg)
    model = prepared.model.to(device)
    inputs = {k for k in (*Collator.MODEL_KEYS, "labels") if accepts(model, k)}  # DistilBERT: no token types
    params = list(prepared.trainable.values())
    optimizer = torch.optim.AdamW(methods.param_groups(prepared, cfg), lr=cfg.lr,
                                  fused=all(p.dtype == torch.float32 for p in params))  # one kernel, not a loop
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    max_steps = steps_per_epoch * cfg.epochs  # the budget; the schedule decays over all of it
    eval_every = cfg.eval_every or steps_per_epoch
    scheduler = linear_schedule(optimizer, int(cfg.warmup_ratio * max_steps), max_steps)
    generator = torch.Generator().manual_seed(cfg.seed)

    def epochs_of_batches():  # a fresh (length-grouped) batch order every epoch, drawn when the epoch starts
        for _ in range(cfg.epochs):
            if cfg.group_by_length:
                order = length_grouped_batches(train_set["length"], cfg.batch_size, generator)
            else:
                order = random_batches(len(train_set), cfg.batch_size, generator)
            yield from iterate(train_set, order, collate)

    # ---- train; every `eval_every` steps (and at the last) evaluate on the selection split, keep the best
    #      checkpoint, stop after `patience` evaluations without improvement
    history, best, best_state, stale, losses = [], None, None, 0, []
    eval_seconds, clock = 0.0, time.perf_counter()
    with PeakMemory(device) as memory:
        model.train()
        bar = progress_bar(epochs_of_batches(), total=max_steps, enabled=progress,
                           desc=f"{task.name} {cfg.method} (≤ {cfg.epochs} epochs)")
        for step, batch in enumerate(bar, start=1):
            batch = {k: v.to(device) for k, v in batch.items() if k in inputs}
            with autocast(cfg.precision, device):  # bf16: the forward's matrix products; the loss is fp32
                loss = model(**batch).loss
            loss.backward()  # gradients of the fp32 parameters are fp32, and so are AdamW's state and update
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):
                raise RunFailed(f"training loss is {losses[-1]} at step {step} (lr {cfg.lr:g}): the run diverged")
            if step % eval_every and step < max_steps:
                continue

            # ---- evaluate
            tick = time.perf_counter()
            row = {"step": step, "epoch": step / steps_per_epoch, "train_loss": float(np.mean(losses)),
                   "train_seconds": tick - clock - eval_seconds}
            seen = {}  # this evaluation's per-example predictions, kept for the best checkpoint
            row.update({f"validation_{k}": v for k, v in evaluate_validation(
                model, splits, task, collate, device, cfg.eval_batch_size, seen, precision=cfg.precision).items()})
            if cfg.select_on == "dev":
                row.update({f"dev_{k}": v for k, v in evaluate_dev(
                    model, splits, task, collate, device, cfg.eval_batch_size, seen, precision=cfg.precision).items()})
            problem = nonfinite(None, prepared.trainable, _as_predictions(seen)) or \
                _nonfinite_row(row)  # a diverged run: inf weights can still give finite losses and class ids
            if problem:
                raise RunFailed(f"{problem} at step {step} (lr {cfg.lr:g}): the run diverged")
            history.append(row)
            losses = []
            if best is None or row[f"{cfg.select_on}_score"] > best[f"{cfg.select_on}_score"]:
                best, best_predictions, stale = row, seen, 0
                best_state = {n: p.detach().to("cpu", copy=True) for n, p in prepared.trainable.items()}
            else:
                stale += 1
            eval_seconds += time.perf_counter() - tick
            model.train()
            if cfg.patience and stale >= cfg.patience:
                break  # early stop: `patience` evaluations in a row without a better selection score
        bar.close()
        train_seconds = time.perf_counter() - clock - eval_seconds
        peak_mb = memory.peak_mb()

    with torch.no_grad():  # leave the model at the best checkpoint, then report it on GLUE dev
        for name, param in prepared.trainable.items():
            param.copy_(best_state[name])
    if cfg.select_on == "dev":
        dev = {k.removeprefix("dev_"): v for k, v in best.items() if k.startswith("dev_")}
    else:
        dev = evaluate_dev(model, splits, task, collate, device, cfg.eval_batch_size, best_predictions,
                           precision=cfg.precision)
    pool_metrics, pool_seconds = {}, 0.0
    if POOL in splits:  # the held-out pool (lnft.pool): the selected checkpoint only, once; selection never sees it
        tick = time.perf_counter()
        metrics = evaluate(model, splits[POOL], task, collate, device, cfg.eval_batch_size, keep=best_predictions,
                           name=POOL, precision=cfg.precision)
        pool_metrics, pool_seconds = {**metrics, "score": task.score(metrics)}, time.perf_counter() - tick
    result = RunResult(
        run_id=run_id or cfg.run_id(),
        config=cfg,
        metrics=dev,
        validation_metrics={k.removeprefix("validation_"): v for k, v in best.items()
                            if k.startswith("validation_")},
        best_epoch=math.ceil(best["step"] / steps_per_epoch),
        best_step=best["step"],
        steps=step,
        max_steps=max_steps,
        eval_seconds=eval_seconds,
        history=history,
        trainable_params=prepared.trainable_params,
        total_params=prepared.total_params,
        train_seconds=train_seconds,
        total_seconds=time.perf_counter() - started,
        train_samples=len(train_set),
        peak_memory_mb=peak_mb,
        device=device.type,
        versions=versions(),
        model_name=display_name(cfg.model),
        pool_metrics=pool_metrics,
        pool_seconds=pool_seconds,
    )
    predictions = {split: Predictions(preds, labels, examples_digest(raw[split]))
                   for split, (preds, labels) in best_predictions.items()}
    problem = nonfinite(result, best_state, predictions)
    if problem:
        raise RunFailed(f"{problem} (lr {cfg.lr:g}): the run diverged")
    return FinetuneOutput(result, best_state, model, predictions)


def _as_predictions(seen: dict) -> dict[str, Predictions]:
    return {split: Predictions(preds, labels, "") for split, (preds, labels) in seen.items()}


def _nonfinite_row(row: dict) -> str:
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            return f"{key} is {value!r}"
    return ""


@torch.inference_mode()
def predict(model, dataset, task: Task, collate: Collator, device, batch_size: int, precision: str = "fp32"):
    """Predictions (class ids, or scores for regression) and labels, in dataset order; the forward runs in the
    run's ``precision`` (bf16: autocast), the logits are read in fp32."""
    model.eval()
    batches = length_grouped_batches(dataset["length"], batch_size, generator=None)
    preds = np.empty(len(dataset), dtype=np.float32 if task.is_regression else np.int64)
    for idx, batch in zip(batches, iterate(dataset, batches, collate)):
        batch.pop("labels")
        with autocast(precision, device):
            logits = model(**{k: v.to(device) for k, v in batch.items() if accepts(model, k)}).logits.float()
        preds[idx] = (logits[:, 0] if task.is_regression else logits.argmax(-1)).cpu().numpy()
    return collate.unscale(preds), np.asarray(dataset["label"][:])


def evaluate_validation(model, splits, task: Task, collate: Collator, device, batch_size: int,
                        keep: dict | None = None, *, precision: str = "fp32") -> dict:
    """Metrics on the held-out validation split, with ``score`` = their mean in points."""
    metrics = evaluate(model, splits["validation"], task, collate, device, batch_size, keep=keep, name="validation",
                       precision=precision)
    return {**metrics, "score": 100.0 * float(np.mean(list(metrics.values())))}


def evaluate_dev(model, splits, task: Task, collate: Collator, device, batch_size: int,
                 keep: dict | None = None, *, precision: str = "fp32") -> dict:
    """GLUE dev metrics (both MNLI dev sets), with ``score`` = the GLUE average in points."""
    metrics = {}
    for split in task.dev_split_names:
        metrics.update(evaluate(model, splits[split], task, collate, device, batch_size, split, keep=keep,
                                precision=precision))
    return {**metrics, "score": task.score(metrics)}


def evaluate(model, dataset, task: Task, collate: Collator, device, batch_size: int,
             split: str | None = None, *, keep: dict | None = None, name: str | None = None,
             precision: str = "fp32") -> dict[str, float]:
    """The task's metrics on one split (names suffixed by the dev split for MNLI); ``keep`` receives
    ``{name or split: (preds, labels)}`` so that per-example predictions are stored with the run."""
    preds, labels = predict(model, dataset, task, collate, device, batch_size, precision)
    if keep is not None:
        keep[name or split] = (preds, labels)
    return task.compute_metrics(labels, preds, split)


def linear_schedule(optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up to the peak rate, then linear decay to 0 (BERT's schedule)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def versions() -> dict[str, str]:
    import datasets
    import peft
    import transformers

    return {"lnft": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "datasets": datasets.__version__, "peft": peft.__version__}


class PeakMemory:
    """Peak memory of this run: CUDA's allocator peak on GPU; on CPU the process' peak resident set
    (VmHWM), reset at the start of the run through /proc/self/clear_refs where Linux allows it."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                with open("/proc/self/clear_refs", "w") as fh:
                    fh.write("5")
            except OSError:
                pass  # not Linux or not allowed: the process-lifetime peak is reported
        return self

    def __exit__(self, *exc):
        return False

    def peak_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
