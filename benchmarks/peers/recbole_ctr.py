"""Run one RecBole context-aware (click) model on pre-split labelled files; print one JSON
line with its test AUC and LogLoss (run with the peers venv).

DIR/NAME/NAME.{train,valid,test}.inter: user_id:token item_id:token label:float;
DIR/NAME/NAME.user and NAME.item: RecBole's own ML-100K side tables. RecBole evaluates
"labeled" (pointwise), early-stopping on valid AUC.

usage: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 VENV/bin/python recbole_ctr.py DIR NAME MODEL
       ['{"key": value}']
"""
import json
import sys
import tempfile
import time

from recbole.quick_start import run_recbole

data_dir, name, model = sys.argv[1:4]
extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
config = {
    "data_path": data_dir, "dataset": name, "benchmark_filename": ["train", "valid", "test"],
    "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LABEL_FIELD": "label",
    "load_col": {"inter": ["user_id", "item_id", "label"],
                 "user": ["user_id", "age", "gender", "occupation"],
                 "item": ["item_id", "release_year", "class"]},
    "eval_args": {"order": "RO", "group_by": None, "mode": "labeled"},
    "metrics": ["AUC", "LogLoss"], "valid_metric": "AUC", "epochs": 100,
    "train_batch_size": 2048, "eval_batch_size": 4096, "stopping_step": 5,
    "device": "cpu", "use_gpu": False, "show_progress": False, "seed": 2020,
    "reproducibility": True, "log_wandb": False,
    "checkpoint_dir": tempfile.mkdtemp(prefix="recbole-"),
}
config.update(extra)
start = time.time()
result = run_recbole(model=model, config_dict=config)
print(json.dumps({
    "system": "recbole-1.2.1", "model": model, "params": extra,
    "valid": result["best_valid_score"],
    "test": {k: round(float(v), 4) for k, v in result["test_result"].items()},
    "seconds": round(time.time() - start, 1),
}))
