"""MovieLens-100K as CTR, StreamRec and RecBole side by side on the same rows.

Both sides get the same random 80/10/10 split of the 100,000 ratings (seed 42; a rating
>= 4 is a click), written in RecBole's atomic format with RecBole's own ML-100K user and item
tables (age, gender, occupation; release year, genres). StreamRec fits its models on the
same rows (its own encoding of the same columns). RecBole runs in the peers venv
(``../shared/peers/setup.sh``). Prints one JSON object: test AUC and LogLoss per system and
model, and each model's AUC minus its own system's LR.

usage: python benchmarks/ctr_peers.py [--data ../shared/data/ml-100k]
                                      [--models logistic:LR,deepfm:DeepFM,dcn_v2:DCNV2]
                                      [--params JSON] [--no-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from streamrec.data.ctr import split_indices
from streamrec.data.pipeline import prepare
from streamrec.eval.benchmark import peers_python
from streamrec.eval.ctr import add_train_profiles, ctr_metrics, ctr_split, movielens_ctr
from streamrec.models.zoo import create

HERE = Path(__file__).resolve().parent


def _write_split(dataset, data_dir: Path, out: Path, name: str) -> None:
    inter = dataset.interactions
    uid = np.asarray(dataset.user_vocab.ids)[inter.users]
    iid = np.asarray(dataset.item_vocab.ids)[inter.items]
    label = (inter.values >= 4).astype(int)
    d = out / name
    d.mkdir(parents=True)
    parts = split_indices(len(inter), (0.8, 0.1, 0.1), 42)
    for part, idx in zip(("train", "valid", "test"), parts, strict=True):  # a loop over parts
        rows = "\n".join(f"{u}\t{i}\t{y}" for u, i, y in zip(uid[idx], iid[idx], label[idx],
                                                             strict=True))
        (d / f"{name}.{part}.inter").write_text(
            "user_id:token\titem_id:token\tlabel:float\n" + rows + "\n")
    src = data_dir.name
    shutil.copy(data_dir / f"{src}.user", d / f"{name}.user")
    shutil.copy(data_dir / f"{src}.item", d / f"{name}.item")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data" / "ml-100k"))
    ap.add_argument("--models", default="logistic:LR,deepfm:DeepFM,dcn_v2:DCNV2")
    ap.add_argument("--params", default="{}", help="StreamRec hyperparameters per model (JSON)")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--profiles", action="store_true",
                    help="StreamRec also gets the train-only count and taste-profile features "
                    "(RecBole has no such option: the comparison is then not like for like)")
    args = ap.parse_args()
    data_dir = Path(args.data)
    dataset = prepare(f"recbole:{data_dir}").dataset
    sp = ctr_split(movielens_ctr(dataset), "random", ratios=(0.8, 0.1, 0.1))
    if args.profiles:
        sp = add_train_profiles(sp)
    params = json.loads(args.params)
    pairs = [m.split(":") for m in args.models.split(",")]
    out: dict[str, object] = {"data": str(data_dir), "rows": [len(p) for p in sp],
                              "streamrec": {}, "recbole": {}}
    for ours, _ in pairs:  # a loop over StreamRec models
        t0 = time.perf_counter()
        m = create(ours, kind="ctr", **params.get(ours, {})).fit(sp.train, valid=sp.valid,
                                                                   rng=0)
        met = ctr_metrics(sp.test.labels, m.predict_proba(sp.test))
        out["streamrec"][ours] = {"auc": round(met["auc"], 4),
                                  "logloss": round(met["logloss"], 4),
                                  "seconds": round(time.perf_counter() - t0, 1)}
    py = peers_python()
    if not args.no_peers and py is not None:
        with tempfile.TemporaryDirectory() as tmp:
            _write_split(dataset, data_dir, Path(tmp), "ml100kctr")
            env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
            for _, theirs in pairs:  # a loop over RecBole models
                res = subprocess.run([str(py), str(HERE / "peers" / "recbole_ctr.py"), tmp,
                                      "ml100kctr", theirs], capture_output=True, text=True,
                                     env=env, timeout=3600, cwd=tmp)  # RecBole logs in cwd
                if res.returncode != 0:
                    out["recbole"][theirs] = {"error": res.stderr.strip().splitlines()[-3:]}
                    continue
                r = json.loads(res.stdout.strip().splitlines()[-1])
                out["recbole"][theirs] = {"auc": r["test"].get("auc"),
                                          "logloss": r["test"].get("logloss"),
                                          "seconds": r["seconds"]}
    for system, base in (("streamrec", pairs[0][0]), ("recbole", pairs[0][1])):
        rows = out[system]
        if base in rows and "auc" in rows[base]:
            for row in rows.values():  # a loop over models
                if row.get("auc") is not None:
                    row["auc_minus_lr"] = round(row["auc"] - rows[base]["auc"], 4)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
