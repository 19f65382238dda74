"""The model card: its file names, its structure and the input schema (docs/bundle.md).

The bottom of the bundle layer: everything else that reads or writes bundles checks
cards with these functions and raises BundleError.
"""

import json
import math
import re
from pathlib import Path
from typing import Any

from ml.errors import PalpiteError

CARD_FILE = "model_card.json"
# The detached signature over the card (ml.signing); like the card, not in `files`.
SIGNATURE_FILE = "signature.json"
MODEL_FILE = "model.joblib"
ADAPTER_DIR = "adapter"
CARD_FORMAT = 1

_VERSION_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# The card fields a caller of ml.bundle_write.write_bundle gives (the rest it fills in).
CALLER_REQUIRED = ("name", "adapter", "input_schema", "feature_names", "classes", "class_labels")
CALLER_OPTIONAL = ("training_data", "metrics", "extra")
_TOP_LEVEL = (
    "card_format",
    "name",
    "version",
    "created_at",
    "adapter",
    "input_schema",
    "feature_names",
    "classes",
    "class_labels",
    "training_data",
    "metrics",
    "libraries",
    "files",
    "extra",
)


class BundleError(PalpiteError):
    """A bundle that is malformed, damaged, or not loadable on this host."""


def require(cond: bool, message: str) -> None:
    """Raise BundleError(`message`) unless `cond`."""
    if not cond:
        raise BundleError(message)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# What marks a batch in a request (`{"instances": [...]}`, docs/api.md): a record field or
# a vector named so would make one instance read as a batch.
BATCH_KEY = "instances"


def check_input_schema(schema: Any) -> None:
    """Raise BundleError unless `schema` is a valid record or vector input schema.

    The one statement of the input-schema contract (docs/bundle.md, "Input schemas"): the
    app compiles its validators from a schema that passed here and checks nothing itself.
    """
    require(isinstance(schema, dict), "input_schema must be an object")
    kind = schema.get("kind")
    if kind == "vector":
        _check_vector_schema(schema)
        return
    require(kind == "record", f"input_schema kind must be 'record' or 'vector', not {kind!r}")
    _check_record_schema(schema)


def _check_vector_schema(schema: dict[str, Any]) -> None:
    name = schema.get("name")
    require(isinstance(name, str) and name != "", "vector schema needs a name")
    require(name != BATCH_KEY, f"vector schema name cannot be {BATCH_KEY!r}: it marks a batch")
    length = schema.get("length")
    require(
        isinstance(length, int) and not isinstance(length, bool) and length > 0,
        "vector schema needs a positive integer length",
    )
    names = schema.get("feature_names")
    require(
        _is_str_list(names) and len(names) == length,
        f"vector schema feature_names must be {length} names",
    )


def _check_record_schema(schema: dict[str, Any]) -> None:
    fields = schema.get("fields")
    require(isinstance(fields, list) and fields, "record schema needs a non-empty fields list")
    seen: set[str] = set()
    for field in fields:
        require(isinstance(field, dict), "record schema fields must be objects")
        name = field.get("name")
        require(isinstance(name, str) and name != "", "every record field needs a name")
        require(name != BATCH_KEY, f"record field name cannot be {BATCH_KEY!r}: it marks a batch")
        require(name not in seen, f"record field {name!r} appears twice")
        seen.add(name)
        _check_field(name, field)
    distinct = schema.get("distinct", [])
    require(isinstance(distinct, list), "distinct must be a list of field groups")
    for group in distinct:
        # A field named twice would have to differ from itself: no request could pass.
        require(
            _is_str_list(group) and len(set(group)) == len(group) >= 2 and set(group) <= seen,
            f"distinct group {group!r} must name two or more different record fields",
        )


def _check_field(name: str, field: dict[str, Any]) -> None:
    ftype = field.get("type")
    require(ftype in ("string", "number"), f"field {name!r}: type must be string or number")
    require(isinstance(field.get("label", ""), str), f"field {name!r}: label must be a string")
    if "enum" in field:
        require(
            ftype == "string" and _is_str_list(field["enum"]) and field["enum"],
            f"field {name!r}: enum must be a non-empty list of strings on a string field",
        )
    for bound in ("minimum", "maximum"):
        if bound in field:
            require(
                ftype == "number" and _is_number(field[bound]) and math.isfinite(field[bound]),
                f"field {name!r}: {bound} must be a finite number on a number field",
            )
    low, high = field.get("minimum", -math.inf), field.get("maximum", math.inf)
    require(low <= high, f"field {name!r}: minimum {low} is over maximum {high}")


def check_card(card: Any) -> None:
    """Raise BundleError unless `card` is a structurally valid card (no file checks)."""
    require(isinstance(card, dict), f"{CARD_FILE} must be a JSON object")
    missing = [key for key in _TOP_LEVEL if key not in card]
    require(not missing, f"{CARD_FILE} lacks {', '.join(missing)}")
    require(
        card["card_format"] == CARD_FORMAT,
        f"card_format mismatch: bundle has {card['card_format']!r}, this host reads {CARD_FORMAT}",
    )
    require(isinstance(card["name"], str) and card["name"] != "", "name must be a string")
    require(
        isinstance(card["version"], str) and bool(_VERSION_RE.match(card["version"])),
        f"version {card['version']!r} is not <UTC timestamp>-<8 hex digits>",
    )
    adapter = card["adapter"]
    require(
        isinstance(adapter, dict) and isinstance(adapter.get("kind"), str),
        "adapter must be an object with a kind",
    )
    fcv = adapter.get("feature_code_version")
    require(
        fcv is None or (isinstance(fcv, int) and not isinstance(fcv, bool)),
        "adapter.feature_code_version must be an integer or null",
    )
    check_input_schema(card["input_schema"])
    require(_is_str_list(card["feature_names"]), "feature_names must be a list of names")
    classes = card["classes"]
    require(
        _is_str_list(classes) and len(classes) >= 2 and len(set(classes)) == len(classes),
        "classes must be two or more distinct names",
    )
    labels = card["class_labels"]
    require(
        isinstance(labels, dict) and set(labels) == set(classes),
        "class_labels must give a label for exactly the classes",
    )
    for key in ("training_data", "metrics"):
        require(card[key] is None or isinstance(card[key], dict), f"{key} must be null or object")
    libs = card["libraries"]
    require(
        isinstance(libs, dict)
        and all(isinstance(libs.get(k), str) for k in ("python", "scikit-learn", "numpy")),
        "libraries must give python, scikit-learn and numpy versions",
    )
    files = card["files"]
    require(
        isinstance(files, dict)
        and MODEL_FILE in files
        and all(isinstance(v, str) and _SHA256_RE.match(v) for v in files.values()),
        f"files must map {MODEL_FILE} and every other file to a sha256",
    )
    require(isinstance(card["extra"], dict), "extra must be an object")


def read_card(bundle_dir: Path) -> dict[str, Any]:
    """The bundle's card, structurally checked (no file, library or adapter checks)."""
    path = Path(bundle_dir) / CARD_FILE
    try:
        card = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BundleError(f"not a bundle: {bundle_dir} has no {CARD_FILE}") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from None
    check_card(card)
    return card


def estimator_classes(estimator: Any) -> list[str]:
    """A fitted classifier's classes_ as card class names; BundleError if it is not one."""
    require(
        callable(getattr(estimator, "predict_proba", None)) and hasattr(estimator, "classes_"),
        f"{type(estimator).__name__} is not a fitted classifier with predict_proba and classes_",
    )
    return [str(c) for c in estimator.classes_]
