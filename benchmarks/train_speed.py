"""Per-epoch training time of StreamRec's torch models side by side with RecBole.

Same split files (ML-100K temporal_user, written in RecBole's atomic format), same batch
size, embedding sizes and negatives per positive; no validation inside the timed epochs.
Both sides report the median over ``--epochs`` epochs (the first epochs of a RecBole run
include its data-loader warm-up). Prints one JSON object.

usage: python benchmarks/train_speed.py [--data SPEC] [--epochs 10] [--models bpr,neumf,...]
                                        [--amp off|bf16] [--no-peers]
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

import torch

from streamrec.data.pipeline import prepare
from streamrec.data.splits import make_split, write_split
from streamrec.eval.benchmark import PEERS_DIR, peers_python
from streamrec.models.registry import create

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


def recbole_epochs(split_dir: Path, ds_name: str, model: str, cfg: dict,
                   epochs: int) -> list[float]:
    py = peers_python()
    if py is None:
        raise FileNotFoundError("RecBole peers venv missing: bash ../shared/peers/setup.sh")
    extra = {**cfg, "epochs": epochs, "eval_step": epochs + 1}  # no evaluation in the run
    proc = subprocess.run(
        [str(py), str(PEERS_DIR / "run_recbole.py"), str(split_dir), ds_name, model,
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
            start = time.perf_counter()
            ours = streamrec_epochs(name, params, split, args.epochs, args.amp)
            row: dict = {"streamrec": name, "params": params,
                         "streamrec_s_per_epoch": round(statistics.median(ours), 4),
                         "streamrec_wall_s": round(time.perf_counter() - start, 2)}
            if not args.no_peers:
                theirs = recbole_epochs(Path(tmp), ds_name, rb_model, rb_cfg, args.epochs)
                row.update({"recbole": rb_model, "recbole_config": rb_cfg,
                            "recbole_s_per_epoch": round(statistics.median(theirs), 4),
                            "speedup": round(statistics.median(theirs)
                                             / statistics.median(ours), 2)})
            out["models"][key] = row
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
