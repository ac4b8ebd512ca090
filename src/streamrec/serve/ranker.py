"""Stage 2's input at request speed: one user x C candidates straight to :class:`CTRData`.

:meth:`CTREncoder.transform` works on polars frames (right for millions of offline rows, a
few milliseconds of overhead for a slate of 200). :class:`SlateEncoder` is the same
encoding compiled for the service: the user's fields are coded once per request (tier,
platform, hashed user id), item-id codes are a lookup table over catalog rows, dense
features are standardised with numpy. ``tests/serve/test_app.py`` checks it returns exactly
what :meth:`CTREncoder.transform` returns for the same slate.
"""

from __future__ import annotations

import zlib

import numpy as np
import polars as pl

from streamrec.data.ctr import CTRData
from streamrec.features.encoders import CTREncoder
from streamrec.serve.feature_formulas import SlateFeatures, feature_array

__all__ = ["SlateEncoder"]

_CLIP = 5.0


class SlateEncoder:
    """A fitted :class:`CTREncoder` compiled for (one user, C items) slates.

    Parameters
    ----------
    encoder : CTREncoder
        The ranker's encoder (fitted offline on the train rows).
    item_ids : ndarray of int64, shape (n_items,)
        External id of each catalog row (for the ``item_id`` field and the history).
    """

    def __init__(self, encoder: CTREncoder, item_ids: np.ndarray) -> None:
        self.encoder = encoder
        base = encoder.base
        self.dense_cols = [col for col, _, _ in base.numeric]
        self.mean = np.array([m for _, m, _ in base.numeric], np.float64)
        self.std = np.array([s for _, _, s in base.numeric], np.float64)
        logged = set(encoder.log)
        self.is_log = np.array([col in logged for col in self.dense_cols], bool)
        self.levels = {col: {v: j + 1 for j, v in enumerate(levels)}
                       for col, levels in base.categorical}
        self.buckets = [(col, np.asarray(edges, np.float64)) for col, edges in base.buckets]
        self.item_field = encoder.item_field
        self.item_codes = np.zeros(0, np.int64)
        self.update_items(item_ids)

    def update_items(self, item_ids: np.ndarray) -> None:
        """(Re)build the item-code table when the catalog grows."""
        ids = np.asarray(item_ids, np.int64)
        if len(ids) == len(self.item_codes) or self.item_field is None:
            return
        self.item_codes = self.encoder._codes(pl.Series(ids), self.item_field)

    def _scalar_code(self, col: str, value: object) -> int:
        if value is None:
            return 0
        if col in self.encoder.hash_buckets:  # hash_codes' rule, for one value
            return 1 + zlib.crc32(str(value).encode()) % self.encoder.hash_buckets[col]
        return self.levels[col].get(str(value), 0)

    def encode(self, features: SlateFeatures, item_rows: np.ndarray,
               user_id: int | None = None) -> CTRData:
        """CTRData of a slate from :meth:`FeatureState.feature_arrays` output.

        Parameters
        ----------
        features : dict
            Numeric features (C,), the two categorical ones as scalars, ``history`` (item
            rows, oldest first).
        item_rows : ndarray of int, shape (C,)
        user_id : int, optional
            The external user id (for a hashed ``user_id`` field).
        """
        enc = self.encoder
        c = len(item_rows)
        v = np.empty((c, len(self.dense_cols)), np.float64)
        for j, col in enumerate(self.dense_cols):  # per field: each is one gather
            v[:, j] = feature_array(features, col)
        v[:, self.is_log] = np.log1p(np.maximum(v[:, self.is_log], 0.0))
        z = np.clip((v - self.mean) / self.std, -_CLIP, _CLIP)
        dense = np.where(np.isfinite(z), z, 0.0).astype(np.float32)
        cat = np.zeros((c, len(enc.categorical) + len(self.buckets)), np.int64)
        for j, col in enumerate(enc.categorical):
            if col == self.item_field:
                cat[:, j] = self.item_codes[item_rows]
            elif col == "user_id":
                cat[:, j] = self._scalar_code(col, user_id)
            else:
                cat[:, j] = self._scalar_code(col, features[col])
        for j, (col, edges) in enumerate(self.buckets, start=len(enc.categorical)):
            v = np.asarray(feature_array(features, col), np.float64)
            ok = np.isfinite(v)
            cat[ok, j] = 1 + np.searchsorted(edges, v[ok], side="right")
        history = None
        if enc.history is not None:
            hist_rows = np.asarray(feature_array(features, "history"), np.int64)[-enc.history_len:]
            row = np.zeros(enc.history_len, np.int64)
            if len(hist_rows):
                row[enc.history_len - len(hist_rows):] = self.item_codes[hist_rows]
            history = np.broadcast_to(row, (c, enc.history_len)).copy()
        return CTRData(enc.schema, dense, cat, history=history)
