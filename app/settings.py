"""Service settings, read from `PALPITE_*` environment variables."""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PALPITE_", frozen=True)

    # The `current` symlink the deploy maintains; resolved once per worker at start-up,
    # so a worker keeps serving the release it loaded until a HUP replaces it.
    model_dir: Path = Path("/srv/palpite/models/current")
    batch_limit: int = Field(default=10_000, ge=1)
    # 10,000 football rows are ~0.6 MB and 10,000 vectors of 4 numbers ~1 MB of JSON.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # How long a request's records (its access line, its metric updates) may wait to be
    # written together with the next requests' (0: at the end of its event-loop pass).
    # app/access_log.py and app/metrics.py say what it saves.
    record_flush_seconds: float = Field(default=0.05, ge=0, le=1)
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # prometheus_client's multiprocess directory; gunicorn.conf.py exports it as
    # PROMETHEUS_MULTIPROC_DIR. Unset: single-process metrics (tests, `uvicorn`).
    metrics_dir: Path | None = None
