"""One masked LayerNorm run on a device, and the check that masking held there (issue 9, point 6).

    python benchmarks/masked_run.py --device cuda      (called by benchmarks/gpu.sh)

Trains ``layernorm-masked`` with a random 1 % mask on a few SST-2 examples and asserts that every
masked-out LayerNorm element is bit-identical to its pre-trained value afterwards and that the selected
ones moved. Prints ``masked_run_ok=<device>`` on success.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("LNFT_PROGRESS", "0")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from lnft import RunConfig, subsets  # noqa: E402
from lnft.models import load_model  # noqa: E402
from lnft.train import finetune  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--samples", type=int, default=64)
    args = p.parse_args(argv)
    pre = {n: t.detach().clone() for n, t in load_model("embedded", 2).named_parameters() if "LayerNorm" in n}
    with tempfile.TemporaryDirectory() as tmp:
        mask = subsets.random_mask(pre, 1, seed=0)
        cfg = RunConfig(task="sst2", method="layernorm-masked", mask_path=subsets.store_mask(mask, tmp),
                        device=args.device, max_train_samples=args.samples, max_eval_samples=32, batch_size=16,
                        lr=1e-2)
        out = finetune(cfg, progress=False)
    moved = 0
    for name, m in mask.items():
        after = out.trained.get(name, pre[name]).cpu()
        assert torch.equal(after[~m], pre[name][~m]), f"masked-out elements of {name} changed on {args.device}"
        moved += int((after[m] != pre[name][m]).sum())
    assert moved > 0, "no selected element moved"
    print(f"masked run on {out.result.device}: dev score {out.result.metrics['score']:.1f}, "
          f"{subsets.mask_size(mask)} elements selected, {moved} moved, every other one bit-identical")
    print(f"masked_run_ok={out.result.device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
