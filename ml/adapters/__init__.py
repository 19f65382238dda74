"""Input adapters: turn validated, column-wise instances into the estimator's matrix.

The bundle card's `adapter.kind` picks one from `ADAPTERS`. Entries are import paths
("module:Class") resolved on first use, so a kind whose module is missing or broken
fails only for bundles of that kind, and loading a bundle imports only its own adapter.
"""

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from ml.errors import PalpiteError


class AdapterError(PalpiteError):
    """Input the adapter cannot turn into a feature matrix (the API answers 4xx)."""


class Adapter(Protocol):
    kind: ClassVar[str]
    # The installed version of the feature code this adapter runs (None: no versioned
    # feature code). A bundle's `adapter.feature_code_version` must equal it.
    feature_code_version: ClassVar[int | None]

    @classmethod
    def load(cls, bundle_dir: Path, card: Mapping[str, Any]) -> "Adapter":
        """Build the adapter from the bundle's `adapter/` files and card."""
        ...

    def transform(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """Column-wise instances to an (n, n_features) float matrix."""
        ...


ADAPTERS: dict[str, str] = {
    "football": "ml.adapters.football:FootballAdapter",
    "vector": "ml.adapters.vector:VectorAdapter",
}


def adapter_class(kind: str) -> type[Adapter]:
    """The adapter class registered for `kind`; AdapterError if unknown or unimportable."""
    target = ADAPTERS.get(kind)
    if target is None:
        known = ", ".join(sorted(ADAPTERS))
        raise AdapterError(f"unknown adapter kind {kind!r} (this host knows: {known})")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AdapterError(f"adapter {kind!r} is not installed on this host: {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise AdapterError(f"adapter {kind!r}: {module_name} has no {class_name}")
    return cls
