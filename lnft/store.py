"""The run store: one directory per finished run, keyed by the config's stable hash.

``runs/<run_id>/record.json`` holds the RunResult (config, history, metrics, timing, memory,
versions); ``runs/<run_id>/predictions.npz`` the per-example predictions and labels of the selected
epoch on the validation and dev splits (for paired bootstrap statistics without retraining);
``runs/<run_id>/trained.safetensors`` holds the trained tensors of the selected epoch —
only the trainable part (a LayerNorm run costs kilobytes), which for ``full`` is the whole fine-tuned
state dict that the change analysis compares with the pre-trained weights.

A run is written into ``runs/.tmp-<run_id>-<pid>-<n>/`` and renamed into place only when complete, so a
run killed mid-way (even by kill -9) never leaves a record that looks finished; the next request
simply trains it again, and every finished run is reused.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid

import torch

from .config import RunConfig
from .errors import LnftError
from .result import PREDICTIONS, Predictions, RunResult, write_predictions

DEFAULT_ROOT = "runs"
RECORD = "record.json"
TRAINED = "trained.safetensors"


class RunStore:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = os.path.abspath(os.path.expanduser(str(root or os.environ.get("LNFT_RUNS", DEFAULT_ROOT))))

    def __repr__(self) -> str:
        return f"RunStore({self.root!r})"

    # ---------------------------------------------------------------- reading
    def run_dir(self, run_id: str) -> str:
        return os.path.join(self.root, run_id)

    def get(self, config: RunConfig) -> RunResult | None:
        """The stored result for this config, or None; never trains."""
        return self.load(config.run_id())

    def load(self, run_id: str) -> RunResult | None:
        path = os.path.join(self.run_dir(run_id), RECORD)
        if not os.path.isfile(path):
            return None
        with open(path) as fh:
            result = RunResult.from_dict(json.load(fh))
        result.run_dir = self.run_dir(run_id)
        return result

    def results(self) -> list[RunResult]:
        """Every finished run in the store."""
        if not os.path.isdir(self.root):
            return []
        found = (self.load(name) for name in sorted(os.listdir(self.root)) if not name.startswith("."))
        return [r for r in found if r is not None]

    def tensors(self, result: RunResult, role: str = "trained") -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        return load_file(os.path.join(result.run_dir, result.files[role]))

    # ---------------------------------------------------------------- writing
    def check_writable(self) -> None:
        """Fail before any work if runs cannot be written here (probing, then removing, a temp file)."""
        probe_dir = self.root
        while not os.path.exists(probe_dir):
            probe_dir = os.path.dirname(probe_dir)
        if not os.path.isdir(probe_dir):
            raise LnftError(f"runs directory {self.root!r} is not writable: {probe_dir!r} is not a directory")
        try:
            with tempfile.TemporaryFile(dir=probe_dir):
                pass
        except OSError as exc:
            raise LnftError(f"runs directory {self.root!r} is not writable ({exc.strerror})") from None

    def get_or_run(self, config: RunConfig, *, progress: bool = True) -> RunResult:
        """The stored result if this config ran before; otherwise train it now and store it."""
        run_id = config.run_id()  # validates the config
        found = self.load(run_id)
        if found is not None:
            return found
        self.check_writable()
        from .train import finetune

        output = finetune(config, progress=progress, run_id=run_id)
        return self.put(output.result, output.trained, output.predictions)

    def put(self, result: RunResult, trained: dict[str, torch.Tensor],
            predictions: dict[str, Predictions] | None = None) -> RunResult:
        from safetensors.torch import save_file

        os.makedirs(self.root, exist_ok=True)
        self._remove_stale(result.run_id)
        tmp = os.path.join(self.root, f".tmp-{result.run_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.makedirs(tmp)
        try:
            save_file({n: t.contiguous() for n, t in trained.items()}, os.path.join(tmp, TRAINED))
            result.files = {"trained": TRAINED}
            if predictions:
                write_predictions(os.path.join(tmp, PREDICTIONS), predictions)
                result.files["predictions"] = PREDICTIONS
            result.run_dir = None
            with open(os.path.join(tmp, RECORD), "w") as fh:
                json.dump(result.to_dict(), fh, indent=1, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            final = self.run_dir(result.run_id)
            try:
                os.rename(tmp, final)
            except OSError:  # another process finished the same run first: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        result.run_dir = final
        return result

    def _remove_stale(self, run_id: str) -> None:
        """Leftovers of killed runs of this config (their process is gone)."""
        for name in os.listdir(self.root):
            if name.startswith(f".tmp-{run_id}-"):
                pid = int(name.split("-")[-2]) if name.split("-")[-2].isdigit() else 0
                if pid and not _alive(pid):
                    shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
