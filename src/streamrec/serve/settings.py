"""Service settings: environment variables ``STREAMREC_*``, an env file, or arguments.

``streamrec serve --settings FILE`` reads ``KEY=value`` lines (the same names, e.g.
``STREAMREC_ADMIN_TOKEN=...``); explicit CLI options win over the file, the file over the
environment's defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything ``create_app`` needs; see each field's description (also in ``--help``)."""

    model_config = SettingsConfigDict(env_prefix="STREAMREC_", extra="ignore")

    registry: Path = Field(Path("registry"), description="model registry directory")
    ref: str = Field("production", description="alias (or version) of every entry to serve")
    state_dir: Path | None = Field(
        None, description="where the event log and the SQLite queue live "
                          "(default: <registry>/../service)")
    queue_url: str | None = Field(
        None, description="sqlite:///PATH (default <state_dir>/queue.db) or redis://HOST:PORT/DB")
    admin_token: SecretStr | None = Field(
        None, description="bearer token of the /admin routes (unset: admin routes refuse); "
                          "give it in the environment or a file, never on a command line")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_k: int = Field(100, ge=1, description="largest k a request may ask for")
    max_events_per_request: int = Field(1000, ge=1)
    max_body_bytes: int = Field(2_000_000, ge=1024)
    n_ann: int = Field(100, ge=1, description="ANN candidates per request")
    n_covisit: int = Field(50, ge=0, description="co-visitation candidates per request")
    n_popular: int = Field(50, ge=1, description="popular candidates per request")
    blend: float = Field(0.5, ge=0, le=1, description="weight of the retrieval model's "
                         "score against the click model's in the final order (0: the ranker "
                         "alone; 0.5 was the best on a validation cut of the synthetic world)")
    max_per_category: int = Field(3, ge=0, description="policy: items of one category (0: off)")
    explore_slots: int = Field(1, ge=0, description="policy: slots for new items")
    new_item_days: int = Field(7, ge=0)
    clock: Literal["auto", "wall", "replay"] = Field(
        "auto", description="wall: real time; replay: time continues from the end of the "
                            "training data (synthetic worlds); auto: replay when the data "
                            "ended more than a day ago")
    reload_interval_s: float = Field(
        2.0, ge=0, description="poll the registry aliases this often and hot-swap (0: off)")
    consumer_batch: int = Field(1000, ge=1)
    consumer_max_backoff_s: float = Field(
        30.0, gt=0, description="a batch that fails to apply is retried after 0.5 s, then "
                                "twice as long each time up to this")
    ready_max_lag: int = Field(
        100_000, ge=0, description="/readyz says not ready while more acknowledged events "
                                   "than this wait to be applied (0: no bound)")
    max_future_s: int = Field(
        300, ge=0, description="events timestamped more than this many seconds after the "
                               "service clock are refused (422); at restart, logged events "
                               "beyond it are set aside instead of moving the clock")
    body_timeout_s: float = Field(
        10.0, gt=0, description="a request body that stalls this long between chunks is "
                                "refused (408) and its connection closed")
    torch_threads: int = Field(1, ge=1, description="torch threads for the (small) rank batches")

    @field_validator("admin_token")
    @classmethod
    def _usable_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and (not token.get_secret_value().strip()
                                  or token.get_secret_value() != token.get_secret_value().strip()):
            raise ValueError("the admin token is empty or has surrounding white space; set "
                             "STREAMREC_ADMIN_TOKEN to a usable token, or unset it to disable "
                             "the admin routes")
        return token

    def resolved_state_dir(self) -> Path:
        return self.state_dir or self.registry.resolve().parent / "service"

    def resolved_queue_url(self) -> str:
        return self.queue_url or f"sqlite:///{self.resolved_state_dir() / 'queue.db'}"
