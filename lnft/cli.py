"""Command line: ``lnft train``, ``lnft methods``, ``lnft runs``, ``lnft reports``, ``lnft plan``.

Bad input ends with one line on stderr (``lnft: error: ...``) and exit status 2, before any work.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

from .config import EMBEDDED, RunConfig
from .errors import LnftError, RunFailed


MAX_NUM_LABELS = 10_000  # lnft methods: the classification head is num_labels x hidden, built for every method


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, like every other input error
        raise LnftError(message)


def _number(name: str, positive: bool = False):
    """An argparse type for a float option whose refusal names the value as given: ``--lr 1e-400`` reads as
    0.0, and "invalid lr 0.0" would name a value nobody typed."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}; allowed: a finite number") from None
        if not math.isfinite(value):
            why = "" if text.strip().lower().lstrip("+-") in ("inf", "infinity", "nan") else " (too large for a float)"
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}{why}; allowed: a finite number")
        if positive and not value > 0:
            why = " (too small for a float: it reads as 0)" if value == 0 and _nonzero(text) else ""
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}{why}; allowed: a finite number > 0")
        return value

    parse.__name__ = name  # argparse names the type in its own messages
    return parse


def _nonzero(text: str) -> bool:
    mantissa = text.strip().lower().split("e")[0]
    return any(c in "123456789" for c in mantissa)


def _train_args(sub):
    p = sub.add_parser("train", help="fine-tune once (cached in the run store) and print a summary")
    p.add_argument("--task", help="GLUE task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli")
    p.add_argument("--task-spec", metavar="FILE", help="your own task: a YAML/JSON spec naming train and dev files "
                   "(CSV, TSV, JSON Lines) or a hub dataset, text and label columns, labels or regression, metrics")
    p.add_argument("--method", required=True, help="full, layernorm, layernorm-output, layernorm-attention, "
                   "bitfit, lora, head, layernorm-masked, layernorm-gain, layernorm-bias, random-channels, ia3")
    p.add_argument("--model", default=EMBEDDED, help="'embedded' (MiniLM-L6, offline), a hub name or a local path")
    p.add_argument("--data", default=None, help="'embedded' (default) or a hub dataset name (nyu-mll/glue)")
    p.add_argument("--data-dir", help="a local directory in the GLUE layout (<TASK>/train.tsv, <TASK>/dev.tsv)")
    p.add_argument("--epochs", type=int, default=RunConfig.epochs, help="the maximum number of epochs")
    p.add_argument("--patience", type=int, default=RunConfig.patience,
                   help="stop after this many evaluations without improvement (0: never stop early)")
    p.add_argument("--eval-every", type=int, default=RunConfig.eval_every,
                   help="evaluate every this many steps (default: once per epoch)")
    p.add_argument("--lr", type=_number("lr", positive=True), default=None,
                   help="peak learning rate (default: the method's)")
    p.add_argument("--head-lr", type=_number("head_lr", positive=True), default=None,
                   help="the task head's rate, a second AdamW group (default: --lr; method head: its --lr)")
    p.add_argument("--pooling", default=RunConfig.pooling,
                   help="what the head reads: auto (the checkpoint's own pooling; lnft.pooling), pooler, mean")
    p.add_argument("--data-seed", type=int, default=None,
                   help="the training subset's draw and validation split (default: --seed)")
    p.add_argument("--batch-size", type=int, default=RunConfig.batch_size)
    p.add_argument("--seed", type=int, default=RunConfig.seed)
    p.add_argument("--max-train-samples", type=int)
    p.add_argument("--max-eval-samples", type=int)
    p.add_argument("--pool-size", type=int, default=RunConfig.pool_size,
                   help="score a held-out pool of this many train-file rows beside dev (lnft/pool.py; 0: dev only)")
    p.add_argument("--select-on", default=RunConfig.select_on, help="validation (held out from train) or dev")
    p.add_argument("--lora-r", type=int, default=RunConfig.lora_r)
    p.add_argument("--lora-alpha", type=int, default=RunConfig.lora_alpha)
    p.add_argument("--lora-dropout", type=_number("lora_dropout"), default=RunConfig.lora_dropout)
    p.add_argument("--lora-targets", nargs="+", default=list(RunConfig.lora_targets),
                   help="module name suffixes for LoRA (default: the model family's, e.g. query value for BERT)")
    p.add_argument("--mask", dest="mask_path", help="layernorm-masked: safetensors file of LN masks")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--precision", default=RunConfig.precision,
                   help="auto (bf16 autocast where the device computes bf16 natively and it measured faster, "
                        "else fp32), fp32 or bf16")
    p.add_argument("--out", default=None, help="runs directory (default: $LNFT_RUNS or ./runs)")
    p.add_argument("--json", action="store_true", help="end stdout with one JSON line")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)


def end_of_budget(still_improving: bool, gain: float) -> str:
    """How a run ended, in the words of the notebooks' † flags (``aggregate.end_state``): "" when its best
    evaluation came earlier; "still improving …: possibly undertrained (†)"; or "annealed to the end …"."""
    from .aggregate import budget_flag, end_state

    state = end_state(still_improving, gain)
    if not state:
        return ""
    note = budget_flag(state, 1, 1, "run").removesuffix(" in 1 of 1 run")
    return note + (": possibly undertrained (†)" if state == "improving" else "")


def cmd_train(args) -> int:
    from .aggregate import last_gain
    from .store import RunStore

    if bool(args.task) == bool(args.task_spec):
        raise LnftError("give --task (a GLUE task) or --task-spec FILE (your own task), one of them")
    task_spec = os.path.abspath(args.task_spec) if args.task_spec else None
    if task_spec and (args.data_dir or args.data is not None):
        raise LnftError("--data/--data-dir cannot be combined with --task-spec (the spec names its data); "
                        "allowed: one of them")
    if args.data_dir and args.data is not None:  # one of them would be silently ignored
        raise LnftError(f"--data {args.data!r} and --data-dir {args.data_dir!r} name two sources of the data; "
                        "allowed: one of them")
    data = os.path.abspath(args.data_dir) if args.data_dir else (args.data or EMBEDDED)
    cfg = RunConfig(task=args.task or RunConfig.task, task_spec=task_spec, method=args.method, model=args.model, data=data, epochs=args.epochs,
                    patience=args.patience, eval_every=args.eval_every, lr=args.lr, batch_size=args.batch_size,
                    seed=args.seed, head_lr=args.head_lr, pooling=args.pooling, data_seed=args.data_seed,
                    max_train_samples=args.max_train_samples, max_eval_samples=args.max_eval_samples,
                    pool_size=args.pool_size, select_on=args.select_on, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                    lora_dropout=args.lora_dropout, lora_targets=tuple(args.lora_targets),
                    mask_path=args.mask_path, device=args.device, precision=args.precision)
    cfg.validate()
    store = RunStore(args.out)
    store.check_writable()
    try:
        result, trained = store.fetch_or_run(cfg, progress=not args.no_progress)
    except LnftError:
        raise
    except Exception as exc:  # noqa: BLE001 — diverged (RunFailed) or raised: one line, the traceback in .failed/
        from .errors import error_text

        text = str(exc) if isinstance(exc, RunFailed) else error_text(exc)[0]
        record = getattr(exc, "lnft_failure_record", None)  # set only when the failure's record was written
        where = f"; recorded in {record}" if record and os.path.isfile(record) else "; not recorded"
        print(f"lnft: run failed: {text}{where}", file=sys.stderr)
        return 1
    s = result.summary()
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in s["metrics"].items())
    print(f"{s['task']} {s['method']} seed={s['seed']} lr={s['lr']:g} ({'trained' if trained else 'cached'})")
    stop = "stopped early" if s["stopped_early"] else "budget used up"
    print(f"  dev: {metrics}  (step {s['best_step']} of {s['steps']}, epoch {s['best_epoch']}, chosen on "
          f"{cfg.select_on}; {stop})")
    if result.pool_metrics:
        pooled = ", ".join(f"{k}={v:.4f}" for k, v in result.pool_metrics.items())
        print(f"  pool: {pooled}  ({cfg.pool_size} held-out train-file rows, the same checkpoint)")
    ending = end_of_budget(s["still_improving"], last_gain(result))
    if ending:
        print(f"  {ending}")
    print(f"  trainable {s['trainable_params']:,} of {s['total_params']:,} parameters "
          f"({s['trainable_percent']:.4f}%)")
    print(f"  train {s['train_seconds']:.1f} s ({s['samples_per_second']:.1f} samples/s), "
          f"peak memory {s['peak_memory_mb']:.0f} MB, device {s['device']} ({s['precision']})")
    print(f"  stored in {s['run_dir'] or f'the ledger {store.ledger.root} (no weights)'}")
    if args.json:
        print(json.dumps(s))
    return 0


def _methods_args(sub):
    p = sub.add_parser("methods", help="list the methods and their trainable parameters on a model")
    p.add_argument("--model", default=EMBEDDED)
    p.add_argument("--num-labels", type=int, default=2)
    p.add_argument("--pooling", default="auto", help="what the head reads: auto (the model's own pooling; "
                   "lnft.pooling), pooler, mean")
    p.set_defaults(func=cmd_methods)


def cmd_methods(args) -> int:
    from . import methods
    from .models import load_model
    from .sources import model_source

    if not 1 <= args.num_labels <= MAX_NUM_LABELS:  # the head grows with it: 1e9 labels took 22 GB
        raise LnftError(f"invalid num-labels {args.num_labels}; allowed: an integer from 1 (regression) to "
                        f"{MAX_NUM_LABELS:,}")
    model_source(args.model).check()
    from .models import auto_pooling
    from .pooling import POOLINGS

    if args.pooling not in POOLINGS:
        raise LnftError(f"invalid pooling {args.pooling!r}; allowed: {', '.join(POOLINGS)}")
    pooling = auto_pooling(args.model) if args.pooling == "auto" else args.pooling
    reads = {"mean": "a linear classifier on the mean over tokens (the encoder's pooler removed)",
             "pooler": "the model class's own head (BERT: the pre-trained pooler on [CLS])"}[pooling]
    print(f"{'method':<22}{'trainable':>12}{'share %':>10}  what trains (+ the task head)")
    for name, method in methods.METHODS.items():
        if method.masked:
            print(f"{name:<22}{'(mask)':>12}{'':>10}  {method.summary}")
            continue
        try:
            prepared = methods.prepare(load_model(args.model, args.num_labels, pooling),
                                       RunConfig(method=name, pooling=pooling))
        except LnftError as exc:  # e.g. layernorm-output on a model type without a component map
            print(f"{name:<22}{'—':>12}{'':>10}  not available: {str(exc).split(';')[0]}")
            continue
        share = 100 * prepared.trainable_params / prepared.total_params
        print(f"{name:<22}{prepared.trainable_params:>12,}{share:>10.4f}  {method.summary}")
    print(f"pooling {pooling!r}{' (auto)' if args.pooling == 'auto' else ''}: the head reads {reads}")
    return 0


def _runs_args(sub):
    p = sub.add_parser("runs", help="list, verify or prune the run store; record, reproduce or re-render the ledger")
    actions = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    for name, text in (("list", "every run: task, method, seed, lr, dev score, date, status (ok/stale/broken/unknown)"),
                       ("verify", "read every record and file (sha256, tensors), recompute the metrics from the stored "
                                  "predictions; exit 1 if any run is broken"),
                       ("prune", "remove stale and/or broken runs (prints what it removes)")):
        a = actions.add_parser(name, help=text)
        a.add_argument("--runs", default=None, help="runs directory (default: $LNFT_RUNS or ./runs)")
        if name == "prune":
            a.add_argument("--stale", action="store_true", help="runs made by other code, data or model than now")
            a.add_argument("--broken", action="store_true", help="unreadable records or files")
            a.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")
    from .ledger_check import add_actions  # the results ledger: reproduce, rerender, record

    add_actions(actions, _Parser)
    p.set_defaults(func=cmd_runs)


def cmd_runs(args) -> int:
    from . import ledger_check
    from .store import RunStore

    if args.action in ledger_check.ACTIONS:
        return ledger_check.cmd(args)
    if args.action == "prune" and not (args.stale or args.broken):
        raise LnftError("runs prune needs --stale and/or --broken; allowed: --stale, --broken, --dry-run")
    store = RunStore(args.runs)
    if not os.path.isdir(store.root):  # a typo would otherwise read as an empty store, all verified
        raise LnftError(f"runs directory {store.root!r} does not exist; allowed: an existing run store (--runs DIR, "
                        "else $LNFT_RUNS, else ./runs)")
    if args.action == "prune" and not args.dry_run:
        store.check_writable()
    entries = store.entries(deep=args.action == "verify")
    if args.action == "prune":
        doomed = [e for e in entries if (args.stale and e.status == "stale") or (args.broken and e.status == "broken")]
        for e in doomed:
            if not args.dry_run:
                try:
                    store.remove(e.run_id)
                except OSError as exc:  # e.g. a read-only store: say so, claim nothing
                    raise LnftError(f"cannot remove run {e.run_id} from {store.root!r} ({exc.strerror or exc}); "
                                    "allowed: a writable run store") from None
            print(f"{'would remove' if args.dry_run else 'removed'} {e.run_id} ({e.status}: {e.reason})")
        if not args.dry_run:
            store.clean_leftovers()
        print(f"{len(doomed)} run(s) {'to remove' if args.dry_run else 'removed'}, {len(entries) - len(doomed)} kept "
              f"in {store.root}")
        return 0
    rows = []
    for e in entries:
        r = e.result
        cfg = r.config if r else None
        score = r.metrics.get("score") if r else None
        date = r.created[:19] if r and r.created else _mtime(os.path.join(e.path, "record.json"))
        rows.append((e.run_id, cfg.task if cfg else "", cfg.method if cfg else "", str(cfg.seed) if cfg else "",
                     f"{cfg.lr:g}" if cfg else "", f"{score:.1f}" if isinstance(score, (int, float)) else "", date,
                     f"{e.status}{f' ({e.reason})' if e.reason else ''}"))
    for row in table(("run id", "task", "method", "seed", "lr", "dev", "date", "status"), rows, right=(3, 4, 5)):
        print(row)
    counts = {s: sum(e.status == s for e in entries) for s in ("ok", "stale", "broken", "unknown")}
    print(f"{len(entries)} run(s) in {store.root}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if args.action == "verify" and counts["broken"] else 0


def table(header: tuple[str, ...], rows: list[tuple[str, ...]], right: tuple[int, ...] = ()) -> list[str]:
    """Lines of a plain-text table: each column as wide as its widest cell (a spec task's run id can be 70
    characters), two spaces between columns, the ``right`` columns right-aligned, the last one unpadded."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = []
    for row in (header, *rows):
        cells = [str(c).rjust(w) if i in right else str(c) if i == len(row) - 1 else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells))
    return lines


def _mtime(path: str) -> str:
    import datetime as dt

    try:
        return dt.datetime.fromtimestamp(os.path.getmtime(path), dt.timezone.utc).isoformat(timespec="seconds")[:19]
    except OSError:
        return ""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lnft", description="LayerNorm fine-tuning companion (arXiv 2403.20284)")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    _train_args(sub)
    _methods_args(sub)
    _runs_args(sub)
    try:
        from .reports import add_cli as add_reports_cli
    except ImportError:
        add_reports_cli = None
    if add_reports_cli:
        add_reports_cli(sub)
    from .plan import add_cli as add_plan_cli

    add_plan_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 0
        return args.func(args)
    except LnftError as exc:
        print(f"lnft: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lnft: interrupted", file=sys.stderr)
        return 130
