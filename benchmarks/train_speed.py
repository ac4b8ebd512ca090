"""Per-epoch training time of StreamRec's torch models side by side with RecBole.

Same split files (ML-100K temporal_user, written in RecBole's atomic format), same batch
size, embedding sizes and negatives per positive; no validation inside the timed epochs.
Both sides report the median over ``--epochs`` epochs (the first epochs of a RecBole run
include its data-loader warm-up). In float32 it also times the dense matrix products a
StreamRec epoch cannot avoid (``gemm_floor_s_per_epoch``, Mult-VAE and NeuMF) and the
speed-up over RecBole an epoch made of nothing else would reach
(``speedup_bound_at_floor``). Prints one JSON object.

usage: python benchmarks/train_speed.py [--data SPEC] [--epochs 10] [--models bpr,neumf,...]
                                        [--amp off|bf16] [--rounds 1] [--no-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from streamrec.data.pipeline import prepare
from streamrec.data.splits import make_split, write_split
from streamrec.eval.benchmark import peers_dir, peers_python
from streamrec.models.zoo import create

# model -> (StreamRec name and params, RecBole model and config): matched settings. The batch
# holds the same rows on both sides: RecBole's pointwise loader (NeuMF) counts the sampled
# negatives in train_batch_size (2048 rows = 1024 positives + 1024 negatives), StreamRec's
# batch_size counts positives; RecBole's Mult-VAE loader batches users, as StreamRec's does.
MODELS: dict[str, tuple[str, dict, str, dict]] = {
    "bpr": ("bprmf", {"factors": 64, "negatives": 1, "batch_size": 2048},
            "BPR", {"embedding_size": 64, "train_batch_size": 2048}),
    "neumf": ("neumf", {"factors": 64, "layers": (128, 64), "dropout": 0.1, "negatives": 1,
                        "batch_size": 1024},
              "NeuMF", {"mf_embedding_size": 64, "mlp_embedding_size": 64,
                        "mlp_hidden_size": [128, 64], "dropout_prob": 0.1,
                        "train_batch_size": 2048}),
    # RecBole's latent_dimension holds mu and log sigma^2 together: latent=64 here
    "multvae": ("multvae", {"hidden": 600, "latent": 64, "dropout": 0.5, "batch_size": 2048},
                "MultiVAE", {"mlp_hidden_size": [600], "latent_dimension": 128,
                             "dropout_prob": 0.5, "train_batch_size": 2048}),
    # the batch of the accuracy runs (128 users)
    "multvae_b128": ("multvae", {"hidden": 600, "latent": 64, "dropout": 0.5,
                                 "batch_size": 128},
                     "MultiVAE", {"mlp_hidden_size": [600], "latent_dimension": 128,
                                  "dropout_prob": 0.5, "train_batch_size": 128}),
}
_EPOCH_LINE = re.compile(r"epoch (\d+) training \[time: ([0-9.]+)s")


def streamrec_epochs(name: str, params: dict, split, epochs: int, amp: str) -> list[float]:
    model = create(name, **params, epochs=epochs, patience=0, device="cpu", amp=amp)
    model.fit(split.train, rng=0)  # no valid: every epoch trains, nothing else is timed
    return list(model.history_.epoch_seconds)


def _median_seconds(fn, reps: int = 15) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):  # a loop over repetitions
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def gemm_floor(name: str, params: dict, split) -> float | None:
    """Seconds per epoch of the dense matrix products StreamRec's steps cannot avoid.

    Mult-VAE: the decoder's output layer (forward, weight gradient, input gradient) for every
    user batch; NeuMF: the tower's products, forward and backward. A lower bound on the epoch
    (nothing else of the step is counted), so ``recbole_s_per_epoch / floor`` bounds the
    speed-up any float32 implementation doing the same arithmetic at this speed can reach.
    """
    train = split.train
    n_users, n_items = len(np.unique(train.users)), int(train.n_items)  # users with a history
    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    if name == "multvae":
        hidden, bs = params["hidden"], params["batch_size"]
        sizes = [min(bs, n_users - lo) for lo in range(0, n_users, bs)]  # users per batch
        w = rand(n_items, hidden)
        total = 0.0
        for b in sorted(set(sizes)):  # a loop over distinct batch sizes
            h, grad = rand(b, hidden), rand(b, n_items)
            secs = _median_seconds(lambda h=h, grad=grad: (h @ w.T, grad.T @ h, grad @ w))
            total += secs * sizes.count(b)
        return total
    if name == "neumf":
        d, (h0, h1), bs = params["factors"], params["layers"], params["batch_size"]
        rows, steps = bs * (1 + params["negatives"]), -(-len(train) // bs)
        mu, mi, a0, g1, g0, ghu = (rand(bs, d), rand(rows, d), rand(rows, h0), rand(rows, h1),
                                   rand(rows, h0), rand(bs, h0))
        wu, wi, w1 = rand(h0, d), rand(h0, d), rand(h1, h0)

        def step() -> None:
            mu @ wu.T, mi @ wi.T, a0 @ w1.T  # forward
            g1.T @ a0, g1 @ w1, g0.T @ mi, g0 @ wi, ghu.T @ mu, ghu @ wu  # backward

        return _median_seconds(step) * steps
    return None


def recbole_epochs(split_dir: Path, ds_name: str, model: str, cfg: dict,
                   epochs: int) -> list[float]:
    py = peers_python()
    if py is None:
        raise FileNotFoundError("RecBole peers venv missing: bash ../shared/peers/setup.sh")
    extra = {**cfg, "epochs": epochs, "eval_step": epochs + 1}  # no evaluation in the run
    proc = subprocess.run(
        [str(py), str((peers_dir() or Path("missing-peers-dir")) / "run_recbole.py"), str(split_dir), ds_name, model,
         json.dumps(extra)],
        capture_output=True, text=True, cwd=split_dir, check=False,
        env={**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
    times = [float(t) for _, t in _EPOCH_LINE.findall(proc.stdout + proc.stderr)]
    if proc.returncode != 0 or not times:
        raise RuntimeError(f"RecBole {model} failed: {proc.stderr[-800:]}")
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="recbole:../shared/data/ml-100k")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--amp", default="off", choices=["off", "bf16"],
                    help="StreamRec precision on CPU (RecBole runs float32)")
    ap.add_argument("--no-peers", action="store_true", help="time StreamRec only")
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate StreamRec and RecBole runs this many times; medians of "
                         "the per-run medians (this host's speed drifts by up to 1.6x)")
    args = ap.parse_args()
    split = make_split(prepare(args.data).dataset, "temporal_user")
    out: dict = {"data": args.data, "protocol": "temporal_user", "amp": args.amp,
                 "epochs": args.epochs, "torch_threads": torch.get_num_threads(),
                 "cpus": os.cpu_count(), "models": {}}
    with tempfile.TemporaryDirectory(prefix="train-speed-") as tmp:
        ds_name = "speed_split"
        write_split(split, tmp, name=ds_name, fmt="recbole")
        for key in args.models.split(","):  # a loop over models
            name, params, rb_model, rb_cfg = MODELS[key]
            ours, theirs, floors = [], [], []
            for _ in range(args.rounds):  # alternating, so the host's drift hits both sides
                ours.append(statistics.median(
                    streamrec_epochs(name, params, split, args.epochs, args.amp)))
                floor = gemm_floor(name, params, split) if args.amp == "off" else None
                if floor is not None:
                    floors.append(floor)
                if not args.no_peers:
                    theirs.append(statistics.median(
                        recbole_epochs(Path(tmp), ds_name, rb_model, rb_cfg, args.epochs)))
            row: dict = {"streamrec": name, "params": params,
                         "streamrec_s_per_epoch": round(statistics.median(ours), 4),
                         "streamrec_rounds": [round(t, 4) for t in ours]}
            if floors:
                row["gemm_floor_s_per_epoch"] = round(statistics.median(floors), 4)
            if theirs:
                row.update({"recbole": rb_model, "recbole_config": rb_cfg,
                            "recbole_s_per_epoch": round(statistics.median(theirs), 4),
                            "recbole_rounds": [round(t, 4) for t in theirs],
                            "speedup": round(statistics.median(theirs)
                                             / statistics.median(ours), 2),
                            "speedup_rounds": [round(t / o, 2)
                                               for t, o in zip(theirs, ours, strict=True)]})
                if floors:
                    row["speedup_bound_at_floor"] = round(
                        statistics.median(theirs) / statistics.median(floors), 2)
            out["models"][key] = row
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
