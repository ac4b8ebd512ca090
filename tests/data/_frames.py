"""Tiny hand-written event logs for the data tests."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from streamrec.data.dataset import Dataset


def events_dataset(users: Sequence, items: Sequence, timestamps: Sequence) -> Dataset:
    """A Dataset of one event per position (user, item, timestamp), in the order given."""
    return Dataset.from_frames(pl.DataFrame({"user_id": users, "item_id": items,
                                             "timestamp": timestamps}))
