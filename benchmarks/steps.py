"""Per-method training-step cost: seconds per step (interleaved, one process) for full, layernorm, bitfit,
lora and head on the same fixed-shape batches of real SST-2 sentences; the step and batches that the
precision, memory and GPU benchmarks time too. Key: ``layernorm_step_time_ratio_vs_full``.
"""
from __future__ import annotations

import statistics
import time

import torch

from lnft import RunConfig, methods
from lnft.data import load_task_data
from lnft.models import load_model, load_tokenizer
from lnft.tasks import get_task
from lnft.train import seed_everything

from .common import STEP_METHODS


def fixed_batches(n_batches: int, batch: int, length: int, task: str = "sst2"):
    """Real SST-2 sentences padded/truncated to a fixed shape, the same stream for every method."""
    cfg = RunConfig(task=task, max_train_samples=n_batches * batch).validate()
    tok = load_tokenizer(cfg.model)
    train = load_task_data(cfg, get_task(task))["train"]
    enc = tok(train["sentence1"][:], truncation=True, max_length=length, padding="max_length", return_tensors="pt")
    labels = torch.tensor(train["label"][:])
    return [{"input_ids": enc["input_ids"][i:i + batch], "attention_mask": enc["attention_mask"][i:i + batch],
             "token_type_ids": enc["token_type_ids"][i:i + batch], "labels": labels[i:i + batch]}
            for i in range(0, n_batches * batch, batch)]


def make_trainer_step(method: str, device, model_fn=None, autocast=None):
    seed_everything(0)
    model = model_fn() if model_fn else load_model("embedded", 2)
    prepared = methods.prepare(model, RunConfig(method=method))
    model = prepared.model.to(device).train()
    opt = torch.optim.AdamW(list(prepared.trainable.values()), lr=1e-5, fused=True)  # as lnft trains
    from contextlib import nullcontext

    def step(batch):
        with autocast or nullcontext():
            loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step, prepared


def step_times(device, repeats: int, batch: int, length: int, model_fn=None, autocast=None,
               methods_: list[str] = STEP_METHODS) -> dict[str, float]:
    batches = fixed_batches(max(2, repeats), batch, length)
    if model_fn is not None:  # random-token batches for a model built from a config
        vocab = model_fn().config.vocab_size
        batches = [{**b, "input_ids": torch.randint(0, vocab, b["input_ids"].shape)} for b in batches]
    steps = {m: make_trainer_step(m, device, model_fn, autocast)[0] for m in methods_}
    for m in methods_:  # warm-up
        steps[m](batches[0])
    times = {m: [] for m in methods_}
    for i in range(repeats):
        for m in methods_:
            tick = time.perf_counter()
            steps[m](batches[i % len(batches)])
            times[m].append(time.perf_counter() - tick)
    return {m: statistics.median(t) for m, t in times.items()}
