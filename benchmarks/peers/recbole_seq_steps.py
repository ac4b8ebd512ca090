"""Time RecBole's own training step for a sequential model (run with the peers venv).

RecBole trains a sequential model on every prefix of every user's train sequence as its own
example ("data augmentation"); on ML-1M one epoch is ~7,700 batches of 128 and takes longer
than this benchmark can wait on 2 cores. This runner builds RecBole's dataset and dataloader
and runs RecBole's ``Trainer._train_epoch`` (their model, loss, optimiser and loader) on the
first ``N`` batches, after ``W`` warm-up batches, and prints one JSON line: seconds per batch,
batches per epoch and the epoch time they imply.

usage: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 VENV/bin/python recbole_seq_steps.py DIR NAME MODEL
       N W ['{"key": value}']
DIR/NAME/NAME.inter: columns user_id:token item_id:token timestamp:float (whole sequences;
RecBole's leave-one-out "LS" split makes the last item test and the one before valid).
"""
import itertools
import json
import sys
import tempfile
import time

from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.trainer import Trainer
from recbole.utils import get_model, init_seed

data_dir, name, model_name, n_batches, warmup = sys.argv[1:6]
extra = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
config_dict = {
    "data_path": data_dir, "dataset": name,
    "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user",
                  "mode": "full"},
    "train_neg_sample_args": None, "loss_type": "CE", "device": "cpu", "use_gpu": False,
    "show_progress": False, "seed": 2020, "reproducibility": True, "log_wandb": False,
    "checkpoint_dir": tempfile.mkdtemp(prefix="recbole-"),
}
config_dict.update(extra)
config = Config(model=model_name, config_dict=config_dict)
init_seed(config["seed"], config["reproducibility"])
t0 = time.time()
dataset = create_dataset(config)
train_data, _, _ = data_preparation(config, dataset)
build_s = time.time() - t0
model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
trainer = Trainer(config, model)


class _First:
    """The first ``n`` batches of RecBole's train loader (after ``skip``)."""

    def __init__(self, loader, skip, n):
        self.loader, self.skip, self.n = loader, skip, n
        self.shuffle = getattr(loader, "shuffle", True)

    def __iter__(self):
        return itertools.islice(iter(self.loader), self.skip, self.skip + self.n)

    def __len__(self):
        return self.n


n, w = int(n_batches), int(warmup)
trainer._train_epoch(_First(train_data, 0, w), 0)  # warm-up (allocator, threads)
start = time.perf_counter()
trainer._train_epoch(_First(train_data, w, n), 1)
per_batch = (time.perf_counter() - start) / n
print(json.dumps({
    "system": "recbole-1.2.1", "model": model_name, "params": extra,
    "examples": len(train_data._dataset), "batches_per_epoch": len(train_data),
    "timed_batches": n, "s_per_batch": round(per_batch, 4),
    "s_per_epoch_implied": round(per_batch * len(train_data), 1),
    "dataset_build_s": round(build_s, 1),
}))
