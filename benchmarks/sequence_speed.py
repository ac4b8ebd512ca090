"""Per-epoch training time of StreamRec's SASRec side by side with RecBole's, on ML-1M.

Same data (``sasrec:FILE``, leave-last-out: the last item of each user is test, the one
before valid; both sides train on every prefix -> next item of the rest), same model
(64 wide, 2 blocks, 1 head, feed-forward 64, dropout 0.2 and no attention dropout,
200 items of history), same loss (full cross-entropy) and 128 sequences per batch
(RecBole's batch holds 128 prefixes, StreamRec's 128 windows holding all their prefixes).

StreamRec: the median of ``--epochs`` whole epochs. RecBole trains on each prefix as its
own padded example, ~7,700 batches an epoch here; its epoch time is implied from
``--batches`` of its own training steps (benchmarks/peers/recbole_seq_steps.py), said so in
the output. Prints one JSON object.

usage: python benchmarks/sequence_speed.py [--data sasrec:FILE] [--epochs 2] [--batches 40]
                                           [--amp off|bf16] [--no-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from streamrec.data.pipeline import prepare
from streamrec.data.splits import make_split
from streamrec.eval.benchmark import peers_python
from streamrec.models.zoo import create

OURS = {"dim": 64, "blocks": 2, "heads": 1, "dropout": 0.2, "attn_dropout": 0.0,
        "max_len": 200, "loss": "ce", "batch_size": 128}
THEIRS = {"MAX_ITEM_LIST_LENGTH": 200, "hidden_size": 64, "inner_size": 64, "n_layers": 2,
          "n_heads": 1, "hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.0,
          "train_batch_size": 128, "loss_type": "CE"}
RUNNER = Path(__file__).resolve().parent / "peers" / "recbole_seq_steps.py"


def recbole_steps(dataset, batches: int, warmup: int) -> dict:
    py = peers_python()
    if py is None:
        raise FileNotFoundError("RecBole peers venv missing: bash ../shared/peers/setup.sh")
    inter = dataset.interactions
    with tempfile.TemporaryDirectory(prefix="seq-speed-") as tmp:
        folder = Path(tmp) / "seq"
        folder.mkdir()
        order = np.lexsort((inter.timestamps, inter.users))
        rows = np.stack([inter.users[order], inter.items[order], inter.timestamps[order]], 1)
        with open(folder / "seq.inter", "w") as f:
            f.write("user_id:token\titem_id:token\ttimestamp:float\n")
            np.savetxt(f, rows, fmt="%d", delimiter="\t")
        proc = subprocess.run(
            [str(py), str(RUNNER), tmp, "seq", "SASRec", str(batches), str(warmup),
             json.dumps(THEIRS)], capture_output=True, text=True, cwd=tmp, check=False,
            env={**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"RecBole SASRec failed: {proc.stderr[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="sasrec:../shared/data/ml-1m-seq/ml-1m.txt")
    ap.add_argument("--epochs", type=int, default=2, help="StreamRec epochs timed")
    ap.add_argument("--batches", type=int, default=40, help="RecBole batches timed")
    ap.add_argument("--warmup", type=int, default=5, help="RecBole batches before timing")
    ap.add_argument("--amp", default="off", choices=["off", "bf16"])
    ap.add_argument("--no-peers", action="store_true", help="time StreamRec only")
    args = ap.parse_args()
    dataset = prepare(args.data).dataset
    split = make_split(dataset, "leave_last_out")
    model = create("sasrec", **OURS, epochs=args.epochs, patience=0, device="cpu",
                   amp=args.amp)
    start = time.perf_counter()
    model.fit(split.train, rng=0)  # no valid: only training is timed
    ours = statistics.median(model.history_.epoch_seconds)
    n_targets = len(split.train) - split.train.n_users
    out: dict = {"data": args.data, "protocol": "leave_last_out", "amp": args.amp,
                 "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                 "train_targets": int(n_targets),
                 "streamrec": {"model": "sasrec", "params": OURS, "epochs": args.epochs,
                               "s_per_epoch": round(ours, 2),
                               "epoch_seconds": [round(s, 2) for s in
                                                 model.history_.epoch_seconds],
                               "wall_s": round(time.perf_counter() - start, 1)}}
    if not args.no_peers:
        theirs = recbole_steps(dataset, args.batches, args.warmup)
        theirs["s_per_epoch_is"] = (f"implied: {theirs['timed_batches']} timed batches x "
                                    f"{theirs['batches_per_epoch']} batches per epoch")
        out["recbole"] = theirs
        out["speedup"] = round(theirs["s_per_epoch_implied"] / ours, 1)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
