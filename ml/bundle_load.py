"""Load a bundle: every check first, then the adapter and the estimator (docs/bundle.md).

A bundle holds a pickle, and unpickling runs code, so every check that can be made from
the card and the file bytes runs before `joblib.load` is called.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from ml.adapters import Adapter
from ml.card import MODEL_FILE, BundleError, estimator_classes
from ml.checksums import verified_card
from ml.errors import PalpiteError
from ml.fastpath import predict_proba_function, row_predict_proba
from ml.host_compat import check_host


def verify_bundle(bundle_dir: Path) -> dict[str, Any]:
    """Every check of docs/bundle.md, without unpickling anything; returns the card."""
    card = verified_card(bundle_dir)
    check_host(card)
    return card


class LoadedModel:
    """A verified bundle in memory: the card, the adapter and the estimator."""

    __slots__ = (
        "_order",
        "_predict_proba",
        "_predict_row",
        "_row_order",
        "adapter",
        "card",
        "estimator",
        "path",
    )

    def __init__(self, path: Path, card: dict[str, Any], adapter: Adapter, estimator: Any):
        self.path = path
        self.card = card
        self.adapter = adapter
        self.estimator = estimator
        est_classes = estimator_classes(estimator)
        if sorted(est_classes) != sorted(card["classes"]):
            raise BundleError(
                f"model classes {est_classes} are not the card's classes {card['classes']}"
            )
        order = [est_classes.index(c) for c in card["classes"]]
        # None when the estimator already answers in card order: no copy per request.
        self._order = None if order == list(range(len(order))) else np.asarray(order)
        self._predict_proba = predict_proba_function(estimator)
        # A row is the estimator's input as it stands only through the vector adapter.
        self._predict_row = row_predict_proba(estimator) if adapter.kind == "vector" else None
        self._row_order = order

    @property
    def version(self) -> str:
        return self.card["version"]

    @property
    def classes(self) -> list[str]:
        return self.card["classes"]

    @property
    def class_labels(self) -> dict[str, str]:
        return self.card["class_labels"]

    @property
    def input_schema(self) -> dict[str, Any]:
        return self.card["input_schema"]

    def predict_proba(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """(n, len(classes)) probabilities, columns in `classes` order."""
        return self.predict_matrix(self.adapter.transform(columns))

    def predict_matrix(self, features: np.ndarray) -> np.ndarray:
        """Probabilities for a feature matrix (the adapter's output), in `classes` order,
        through the verified numpy fast path when the estimator has one (ml.fastpath)."""
        proba = self._predict_proba(features)
        return proba if self._order is None else proba[:, self._order]

    def predict_row(self, features: list[float]) -> list[float] | None:
        """One feature row's probabilities in `classes` order, without numpy, for a small
        linear estimator (ml.fastpath.row_predict_proba); None when there is no such
        path or it cannot say (then predict_matrix answers)."""
        if self._predict_row is None:
            return None
        proba = self._predict_row(features)
        if proba is None or self._order is None:
            return proba
        return [proba[i] for i in self._row_order]


def load_bundle(bundle_dir: Path) -> LoadedModel:
    """Verify a bundle directory (a `current` symlink is resolved first), then load it."""
    path = Path(bundle_dir).resolve()
    card = verified_card(path)
    adapter_cls = check_host(card)
    try:
        adapter = adapter_cls.load(path, card)
    except PalpiteError:
        raise
    except Exception as exc:
        raise BundleError(f"adapter {card['adapter']['kind']!r} failed to load: {exc}") from None
    try:
        estimator = joblib.load(path / MODEL_FILE)
    except Exception as exc:
        raise BundleError(f"{MODEL_FILE} failed to load: {exc}") from None
    return LoadedModel(path, card, adapter, estimator)
