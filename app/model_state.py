"""The model one worker serves: loaded once at start-up, never swapped in place.

A new model arrives by the deploy moving the `current` symlink and sending SIGHUP to the
gunicorn master, which starts fresh workers (each loads the new target here) and lets the
old ones finish their requests. So a worker's model is fixed for its life, and a request
never sees a half-swapped state.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sklearn

from app.schema import InputSchema, SchemaError, compile_schema
from ml.bundle import BundleError, LoadedModel, load_bundle
from ml.errors import PalpiteError

log = logging.getLogger("palpite.model")

Loader = Callable[[Path], LoadedModel]


@dataclass(frozen=True)
class ModelState:
    model: LoadedModel | None
    schema: InputSchema | None
    # Why there is no model (for /health/ready and the 503 answers); None when loaded.
    reason: str | None
    load_seconds: float

    @property
    def ready(self) -> bool:
        return self.model is not None

    @property
    def version(self) -> str | None:
        return self.model.version if self.model else None

    @property
    def card(self) -> dict[str, Any] | None:
        return self.model.card if self.model else None


def load_model_state(model_dir: Path, loader: Loader = load_bundle) -> ModelState:
    """Load and verify the bundle at `model_dir`; a failure is a state, not an exception."""
    start = time.perf_counter()
    try:
        if not model_dir.exists():
            raise BundleError(f"no model at {model_dir}")
        model = loader(model_dir)
        schema = compile_schema(model.input_schema)
    except (PalpiteError, SchemaError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        log.error("no model loaded: %s", reason)
        return ModelState(None, None, reason, time.perf_counter() - start)
    except Exception as exc:
        # Anything else is a bug somewhere, but the process must still start and say why.
        reason = f"{type(exc).__name__}: {exc}"
        log.exception("no model loaded: %s", reason)
        return ModelState(None, None, reason, time.perf_counter() - start)
    elapsed = time.perf_counter() - start
    # The service checks every number is finite before predicting (app.schema) and every
    # probability after (app.predict), so scikit-learn's own per-call finiteness scan is
    # redundant; skipping it cut a one-row predict_proba by about 40% here.
    sklearn.set_config(assume_finite=True)
    log.info("loaded model %s from %s in %.3fs", model.version, model.path, elapsed)
    return ModelState(model, schema, None, elapsed)
