"""Training throughput, whole runs: lnft's ``finetune`` vs a Hugging Face ``Trainer`` set up like transformers'
``run_glue.py`` defaults (pad every example to 128, random batches, fp32: run_glue's default precision) and vs
a tuned ``Trainer`` (per-batch padding with DataCollatorWithPadding, ``train_sampling_strategy=
"group_by_length"``, and lnft's precision: ``TrainingArguments(bf16=True)`` where lnft's resolves to bf16, on
CPU with ``use_cpu=True``, which accelerate runs under ``torch.autocast("cpu", torch.bfloat16)`` as lnft does);
same model, examples, epochs, batch size, learning rate, seed, no warm-up and no weight decay (run_glue's
defaults) — A, B and C runs interleaved, in one process on one machine. Each row records the precision its
run actually trained in (the Trainer's from its accelerator). Keys: ``train_speedup_vs_run_glue_defaults``,
``dev_metric_delta_vs_run_glue_defaults``, ``train_speedup_vs_tuned_trainer``.
"""
from __future__ import annotations

import statistics
import tempfile

import numpy as np

from lnft import RunConfig
from lnft.data import load_task_data
from lnft.models import load_model, load_tokenizer, resolve_device
from lnft.tasks import get_task
from lnft.train import finetune, seed_everything

from .common import log


def trainer_run(cfg: RunConfig, recipe: str, out_dir: str) -> dict:
    """A Trainer run on exactly lnft's training examples; ``recipe`` is "run_glue" (its defaults: fp32) or
    "tuned" (in ``cfg.precision``, lnft's resolved precision)."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, default_data_collator

    task = get_task(cfg.task)
    tokenizer = load_tokenizer(cfg.model)
    splits = load_task_data(cfg, task)
    pad = "max_length" if recipe == "run_glue" else False

    def encode(split):
        ds = splits[split]
        texts = (ds["sentence1"][:], ds["sentence2"][:]) if task.is_pair else (ds["sentence1"][:],)
        enc = tokenizer(*texts, truncation=True, max_length=cfg.max_seq_length, padding=pad)
        enc["labels"] = ds["label"][:]
        if recipe == "tuned":
            enc["length"] = [len(x) for x in enc["input_ids"]]
        return Dataset.from_dict(dict(enc))

    train, dev = encode("train"), encode("dev")
    seed_everything(cfg.seed)
    model = load_model(cfg.model, task.num_labels)
    on_cpu = resolve_device(cfg.device).type == "cpu"
    bf16 = recipe == "tuned" and cfg.precision == "bf16"
    args = TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        num_train_epochs=cfg.epochs, learning_rate=cfg.lr, weight_decay=0.0, warmup_steps=0, seed=cfg.seed,
        save_strategy="no", eval_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True,
        use_cpu=on_cpu, bf16=bf16,
        train_sampling_strategy="group_by_length" if recipe == "tuned" else "random")
    collator = DataCollatorWithPadding(tokenizer) if recipe == "tuned" else default_data_collator
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator)
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # keep stdout for the table
    amp = trainer.accelerator.mixed_precision if getattr(trainer.accelerator, "native_amp", False) else "no"
    if amp != ("bf16" if bf16 else "no"):  # the comparison is only fair if the Trainer runs as asked
        raise RuntimeError(f"Trainer ({recipe}) asked for {'bf16' if bf16 else 'fp32'} runs with mixed precision {amp!r}")
    metrics = trainer.train().metrics
    preds = trainer.predict(dev).predictions
    preds = preds[:, 0] if task.is_regression else preds.argmax(-1)
    score = task.score(task.compute_metrics(np.asarray(dev["labels"]), preds))
    return {"samples_per_second": len(train) * cfg.epochs / metrics["train_runtime"], "dev_score": score,
            "seconds": metrics["train_runtime"], "precision": "bf16" if amp == "bf16" else "fp32"}


def lnft_run(cfg: RunConfig) -> dict:
    assert cfg.epochs == 1, "one epoch: lnft's selected epoch is then the final model, like the Trainer's"
    r = finetune(cfg, progress=False).result
    return {"samples_per_second": r.samples_per_second, "dev_score": r.metrics["score"], "seconds": r.train_seconds,
            "precision": r.config.precision}


def throughput(tasks: dict[str, int], epochs: int, repeats: int, device: str,
               eval_samples: int, precision: str = "auto") -> tuple[list[dict], dict]:
    """Rows per task and recipe (medians over ``repeats``) and the keys; lnft runs in ``precision`` as its
    ``RunConfig`` resolves it here (auto: bf16 where the CPU computes it natively), the tuned Trainer likewise."""
    rows = []
    for task, n in tasks.items():
        cfg = RunConfig(task=task, method="full", lr=1e-4, epochs=epochs, batch_size=32, max_train_samples=n,
                        max_eval_samples=eval_samples, warmup_ratio=0.0, weight_decay=0.0, seed=42, device=device,
                        precision=precision).validate()
        runs = {"lnft": [], "run_glue": [], "tuned": []}
        for rep in range(repeats):  # interleaved A/B/C so drift hits all alike
            for name in runs:
                log(f"[throughput] {task} n={n} repeat {rep + 1}/{repeats}: {name}")
                with tempfile.TemporaryDirectory() as tmp:
                    runs[name].append(lnft_run(cfg) if name == "lnft" else trainer_run(cfg, name, tmp))
        for name, results in runs.items():
            rows.append({"task": task, "recipe": name, "train_examples": n, "epochs": epochs,
                         "precision": "/".join(sorted({r["precision"] for r in results})),
                         "samples_per_second": statistics.median(r["samples_per_second"] for r in results),
                         "train_seconds": statistics.median(r["seconds"] for r in results),
                         "dev_score": statistics.median(r["dev_score"] for r in results)})
    by = {(r["task"], r["recipe"]): r for r in rows}
    task_names = list(tasks)
    speed = lambda other: float(np.exp(np.mean([np.log(by[(t, "lnft")]["samples_per_second"] /  # noqa: E731
                                                       by[(t, other)]["samples_per_second"]) for t in task_names])))
    keys = {"train_speedup_vs_run_glue_defaults": speed("run_glue"),
            "dev_metric_delta_vs_run_glue_defaults": float(np.mean(
                [by[(t, "lnft")]["dev_score"] - by[(t, "run_glue")]["dev_score"] for t in task_names])),
            "train_speedup_vs_tuned_trainer": speed("tuned")}
    return rows, keys
