"""Write a new bundle: the estimator, its adapter files and the card (docs/bundle.md)."""

import json
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import joblib
import numpy as np

from ml.card import (
    ADAPTER_DIR,
    CALLER_OPTIONAL,
    CALLER_REQUIRED,
    CARD_FILE,
    CARD_FORMAT,
    MODEL_FILE,
    BundleError,
    check_card,
    estimator_classes,
    require,
)
from ml.checksums import content_hash, hash_tree
from ml.fileio import atomic_directory
from ml.host_compat import host_libraries


def _json_default(value: Any) -> Any:
    # Metrics computed with numpy arrive as numpy scalars.
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _card_bytes(card: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(card, indent=2, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"card fields are not plain JSON: {exc}") from None
    return text.encode() + b"\n"


def _safe_relpath(rel: str) -> PurePosixPath:
    path = PurePosixPath(rel)
    require(
        rel != "" and not path.is_absolute() and ".." not in path.parts and "\\" not in rel,
        f"unsafe path {rel!r} (must be relative, without '..')",
    )
    return path


def write_bundle(
    out_dir: Path,
    estimator: Any,
    card_fields: Mapping[str, Any],
    adapter_files: Mapping[str, bytes | Path] | None = None,
    *,
    now: datetime | None = None,
) -> Path:
    """Write a new bundle under `out_dir/<version>/` and return that directory."""
    reserved = sorted(set(card_fields) - set(CALLER_REQUIRED) - set(CALLER_OPTIONAL))
    require(not reserved, f"card_fields may not set {', '.join(reserved)}")
    absent = [key for key in CALLER_REQUIRED if key not in card_fields]
    require(not absent, f"card_fields lacks {', '.join(absent)}")
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    card: dict[str, Any] = {
        "card_format": CARD_FORMAT,
        "name": card_fields["name"],
        "version": f"{stamp:%Y%m%dT%H%M%SZ}-00000000",
        "created_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **{key: card_fields[key] for key in CALLER_REQUIRED[1:]},
        "training_data": card_fields.get("training_data"),
        "metrics": card_fields.get("metrics"),
        "libraries": host_libraries(),
        "files": {MODEL_FILE: "0" * 64},
        "extra": card_fields.get("extra", {}),
    }
    # Round-trip through JSON so numpy scalars become plain numbers before the checks.
    card = json.loads(_card_bytes(card))
    check_card(card)
    est_classes = estimator_classes(estimator)
    require(
        sorted(est_classes) == sorted(card["classes"]),
        f"classes {card['classes']} are not the estimator's classes_ {est_classes}",
    )
    n_in = getattr(estimator, "n_features_in_", None)
    require(
        n_in is None or n_in == len(card["feature_names"]),
        f"estimator takes {n_in} features, feature_names lists {len(card['feature_names'])}",
    )
    adapter_paths = {rel: _safe_relpath(rel) for rel in (adapter_files or {})}

    out_dir = Path(out_dir)
    with atomic_directory(out_dir, ".bundle-") as tmp:
        joblib.dump(estimator, tmp / MODEL_FILE)
        for rel, content in (adapter_files or {}).items():
            target = tmp / ADAPTER_DIR / adapter_paths[rel]
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copyfile(content, target)
        card["files"] = hash_tree(tmp)
        card["version"] = f"{stamp:%Y%m%dT%H%M%SZ}-{content_hash(card['files'])}"
        (tmp / CARD_FILE).write_bytes(_card_bytes(card))
        final = out_dir / card["version"]
        require(not final.exists(), f"bundle {final} exists already")
        tmp.chmod(0o755)
        tmp.rename(final)
    return final
