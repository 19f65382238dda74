"""The model bundle: write, archive, unpack, verify and load (the contract is docs/bundle.md).

A bundle holds a pickle, and unpickling runs code, so every check that can be made from
the card and the file bytes runs before `joblib.load` is called.
"""

import gzip
import hashlib
import json
import os
import platform
import re
import shutil
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

import joblib
import numpy as np

from ml.adapters import Adapter, AdapterError, adapter_class
from ml.errors import PalpiteError
from ml.fastpath import predict_proba_function

CARD_FILE = "model_card.json"
# The detached signature over the card (ml.signing); like the card, not in `files`.
SIGNATURE_FILE = "signature.json"
MODEL_FILE = "model.joblib"
ADAPTER_DIR = "adapter"
CARD_FORMAT = 1
# Log-loss units (nats) by which the model must beat the base-rate baseline.
DEFAULT_MIN_GAIN = 0.005

_VERSION_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CALLER_REQUIRED = ("name", "adapter", "input_schema", "feature_names", "classes", "class_labels")
_CALLER_OPTIONAL = ("training_data", "metrics", "extra")
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


class QualityGateError(PalpiteError):
    """A model that does not beat the base-rate baseline by the required margin."""


# ---------------------------------------------------------------- card and schema checks


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise BundleError(message)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_input_schema(schema: Any) -> None:
    """Raise BundleError unless `schema` is a valid record or vector input schema."""
    _require(isinstance(schema, dict), "input_schema must be an object")
    kind = schema.get("kind")
    if kind == "vector":
        _require(
            isinstance(schema.get("name"), str) and schema["name"], "vector schema needs a name"
        )
        length = schema.get("length")
        _require(
            isinstance(length, int) and not isinstance(length, bool) and length > 0,
            "vector schema needs a positive integer length",
        )
        names = schema.get("feature_names")
        _require(
            _is_str_list(names) and len(names) == length,
            f"vector schema feature_names must be {length} names",
        )
        return
    _require(kind == "record", f"input_schema kind must be 'record' or 'vector', not {kind!r}")
    fields = schema.get("fields")
    _require(isinstance(fields, list) and fields, "record schema needs a non-empty fields list")
    seen: set[str] = set()
    for field in fields:
        _require(isinstance(field, dict), "record schema fields must be objects")
        name = field.get("name")
        _require(isinstance(name, str) and name != "", "every record field needs a name")
        _require(name not in seen, f"record field {name!r} appears twice")
        seen.add(name)
        ftype = field.get("type")
        _require(ftype in ("string", "number"), f"field {name!r}: type must be string or number")
        _require(isinstance(field.get("label", ""), str), f"field {name!r}: label must be a string")
        if "enum" in field:
            _require(
                ftype == "string" and _is_str_list(field["enum"]) and field["enum"],
                f"field {name!r}: enum must be a non-empty list of strings on a string field",
            )
        for bound in ("minimum", "maximum"):
            if bound in field:
                _require(
                    ftype == "number" and _is_number(field[bound]),
                    f"field {name!r}: {bound} must be a number on a number field",
                )
    for group in schema.get("distinct", []):
        _require(
            _is_str_list(group) and len(group) >= 2 and set(group) <= seen,
            f"distinct group {group!r} must name two or more record fields",
        )


def _check_card(card: Any) -> None:
    _require(isinstance(card, dict), f"{CARD_FILE} must be a JSON object")
    missing = [key for key in _TOP_LEVEL if key not in card]
    _require(not missing, f"{CARD_FILE} lacks {', '.join(missing)}")
    _require(
        card["card_format"] == CARD_FORMAT,
        f"card_format mismatch: bundle has {card['card_format']!r}, this host reads {CARD_FORMAT}",
    )
    _require(isinstance(card["name"], str) and card["name"] != "", "name must be a string")
    _require(
        isinstance(card["version"], str) and bool(_VERSION_RE.match(card["version"])),
        f"version {card['version']!r} is not <UTC timestamp>-<8 hex digits>",
    )
    adapter = card["adapter"]
    _require(
        isinstance(adapter, dict) and isinstance(adapter.get("kind"), str),
        "adapter must be an object with a kind",
    )
    fcv = adapter.get("feature_code_version")
    _require(
        fcv is None or (isinstance(fcv, int) and not isinstance(fcv, bool)),
        "adapter.feature_code_version must be an integer or null",
    )
    check_input_schema(card["input_schema"])
    _require(_is_str_list(card["feature_names"]), "feature_names must be a list of names")
    classes = card["classes"]
    _require(
        _is_str_list(classes) and len(classes) >= 2 and len(set(classes)) == len(classes),
        "classes must be two or more distinct names",
    )
    labels = card["class_labels"]
    _require(
        isinstance(labels, dict) and set(labels) == set(classes),
        "class_labels must give a label for exactly the classes",
    )
    for key in ("training_data", "metrics"):
        _require(card[key] is None or isinstance(card[key], dict), f"{key} must be null or object")
    libs = card["libraries"]
    _require(
        isinstance(libs, dict)
        and all(isinstance(libs.get(k), str) for k in ("python", "scikit-learn", "numpy")),
        "libraries must give python, scikit-learn and numpy versions",
    )
    files = card["files"]
    _require(
        isinstance(files, dict)
        and MODEL_FILE in files
        and all(isinstance(v, str) and _SHA256_RE.match(v) for v in files.values()),
        f"files must map {MODEL_FILE} and every other file to a sha256",
    )
    _require(isinstance(card["extra"], dict), "extra must be an object")


def read_card(bundle_dir: Path) -> dict[str, Any]:
    """The bundle's card, structurally checked (no file, library or adapter checks)."""
    path = Path(bundle_dir) / CARD_FILE
    try:
        card = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BundleError(f"not a bundle: {bundle_dir} has no {CARD_FILE}") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from None
    _check_card(card)
    return card


# ---------------------------------------------------------------- files and checksums


def sha256_file(path: Path) -> str:
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _hash_tree(bundle_dir: Path) -> dict[str, str]:
    """sha256 of every file under `bundle_dir` except the card and its signature."""
    files: dict[str, str] = {}
    for path in sorted(bundle_dir.rglob("*")):
        rel = path.relative_to(bundle_dir).as_posix()
        if path.is_symlink():
            raise BundleError(f"bundle holds a symlink: {rel}")
        if path.is_file() and rel not in (CARD_FILE, SIGNATURE_FILE):
            files[rel] = sha256_file(path)
    return files


def _content_hash(files: Mapping[str, str]) -> str:
    text = "".join(f"{name}\0{digest}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def check_files(bundle_dir: Path, card: Mapping[str, Any]) -> None:
    """Every listed file present with its sha256, and no unlisted file."""
    actual = _hash_tree(Path(bundle_dir))
    expected: Mapping[str, str] = card["files"]
    missing = sorted(set(expected) - set(actual))
    _require(not missing, f"bundle {card['version']} is missing {', '.join(missing)}")
    extra = sorted(set(actual) - set(expected))
    _require(not extra, f"bundle {card['version']} has unlisted files: {', '.join(extra)}")
    for name, digest in sorted(expected.items()):
        _require(
            actual[name] == digest,
            f"checksum mismatch for {name}: card says {digest[:12]}…, file is {actual[name][:12]}…",
        )


# ---------------------------------------------------------------- host compatibility


@cache
def _installed(dist: str) -> str:
    # Package metadata, not an import: scikit-learn takes a second to import.
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


def host_libraries() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": _installed("scikit-learn"),
        "numpy": _installed("numpy"),
    }


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_host(card: Mapping[str, Any]) -> type[Adapter]:
    """Library versions and the adapter against this host; returns the adapter class."""
    built, here = card["libraries"], host_libraries()
    rules = (("python", "Python", _major_minor), ("numpy", "numpy", _major_minor))
    for key, label, norm in rules:
        _require(
            norm(built[key]) == norm(here[key]),
            f"{label} mismatch: bundle built with {built[key]}, this host has {here[key]}"
            " (major.minor must match)",
        )
    _require(
        built["scikit-learn"] == here["scikit-learn"],
        f"scikit-learn mismatch: bundle built with {built['scikit-learn']},"
        f" this host has {here['scikit-learn']}",
    )
    kind = card["adapter"]["kind"]
    try:
        cls = adapter_class(kind)
    except AdapterError as exc:
        raise BundleError(str(exc)) from None
    wanted = card["adapter"].get("feature_code_version")
    installed = getattr(cls, "feature_code_version", None)
    _require(
        wanted == installed,
        f"feature code mismatch for adapter {kind!r}: bundle built with version {wanted},"
        f" this host has {installed}",
    )
    return cls


def verify_bundle(bundle_dir: Path) -> dict[str, Any]:
    """Every check of docs/bundle.md, without unpickling anything; returns the card."""
    card = read_card(bundle_dir)
    check_files(bundle_dir, card)
    check_host(card)
    return card


# ---------------------------------------------------------------- writing


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
    _require(
        rel != "" and not path.is_absolute() and ".." not in path.parts and "\\" not in rel,
        f"unsafe path {rel!r} (must be relative, without '..')",
    )
    return path


def _estimator_classes(estimator: Any) -> list[str]:
    _require(
        callable(getattr(estimator, "predict_proba", None)) and hasattr(estimator, "classes_"),
        f"{type(estimator).__name__} is not a fitted classifier with predict_proba and classes_",
    )
    return [str(c) for c in estimator.classes_]


def write_bundle(
    out_dir: Path,
    estimator: Any,
    card_fields: Mapping[str, Any],
    adapter_files: Mapping[str, bytes | Path] | None = None,
    *,
    now: datetime | None = None,
) -> Path:
    """Write a new bundle under `out_dir/<version>/` and return that directory."""
    reserved = sorted(set(card_fields) - set(_CALLER_REQUIRED) - set(_CALLER_OPTIONAL))
    _require(not reserved, f"card_fields may not set {', '.join(reserved)}")
    absent = [key for key in _CALLER_REQUIRED if key not in card_fields]
    _require(not absent, f"card_fields lacks {', '.join(absent)}")
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    card: dict[str, Any] = {
        "card_format": CARD_FORMAT,
        "name": card_fields["name"],
        "version": f"{stamp:%Y%m%dT%H%M%SZ}-00000000",
        "created_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **{key: card_fields[key] for key in _CALLER_REQUIRED[1:]},
        "training_data": card_fields.get("training_data"),
        "metrics": card_fields.get("metrics"),
        "libraries": host_libraries(),
        "files": {MODEL_FILE: "0" * 64},
        "extra": card_fields.get("extra", {}),
    }
    # Round-trip through JSON so numpy scalars become plain numbers before the checks.
    card = json.loads(_card_bytes(card))
    _check_card(card)
    est_classes = _estimator_classes(estimator)
    _require(
        sorted(est_classes) == sorted(card["classes"]),
        f"classes {card['classes']} are not the estimator's classes_ {est_classes}",
    )
    n_in = getattr(estimator, "n_features_in_", None)
    _require(
        n_in is None or n_in == len(card["feature_names"]),
        f"estimator takes {n_in} features, feature_names lists {len(card['feature_names'])}",
    )
    adapter_paths = {rel: _safe_relpath(rel) for rel in (adapter_files or {})}

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out_dir))
    try:
        joblib.dump(estimator, tmp / MODEL_FILE)
        for rel, content in (adapter_files or {}).items():
            target = tmp / ADAPTER_DIR / adapter_paths[rel]
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copyfile(content, target)
        card["files"] = _hash_tree(tmp)
        card["version"] = f"{stamp:%Y%m%dT%H%M%SZ}-{_content_hash(card['files'])}"
        (tmp / CARD_FILE).write_bytes(_card_bytes(card))
        final = out_dir / card["version"]
        _require(not final.exists(), f"bundle {final} exists already")
        tmp.chmod(0o755)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# ---------------------------------------------------------------- archives


def archive_bundle(bundle_dir: Path, dest_dir: Path | None = None) -> Path:
    """Write `<version>.tar.gz` (beside the bundle unless `dest_dir`) and return its path.

    The archive is byte-for-byte reproducible (sorted names, zero times and owners), so
    archiving one bundle twice gives one sha256.
    """
    bundle_dir = Path(bundle_dir)
    card = read_card(bundle_dir)
    check_files(bundle_dir, card)
    dest_dir = Path(dest_dir) if dest_dir is not None else bundle_dir.parent
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{card['version']}.tar.gz"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}-", dir=dest_dir)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            _gzip_writer(raw) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for rel in sorted([*card["files"], CARD_FILE]):
                path = bundle_dir / rel
                info = tarfile.TarInfo(rel)
                info.size = path.stat().st_size
                info.mode = 0o644
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
        Path(tmp_name).chmod(0o644)
        Path(tmp_name).replace(dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return dest


def _gzip_writer(raw: Any) -> gzip.GzipFile:
    # mtime=0 and no file name keep the gzip header identical between runs.
    return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    names: set[str] = set()
    for member in members:
        name = member.name
        path = PurePosixPath(name)
        _require(
            not path.is_absolute() and ".." not in path.parts and name not in names,
            f"archive member {name!r} escapes the bundle or repeats",
        )
        _require(
            member.isfile() or member.isdir(),
            f"archive member {name!r} is not a regular file or directory",
        )
        names.add(name)
    return members


def unpack_archive(archive: Path, dest_root: Path, expected_version: str | None = None) -> Path:
    """Unpack a bundle archive to `dest_root/<version>/`, checking every file's sha256.

    Links, devices, absolute names and '..' are refused. If that version's directory
    exists already and is intact, it is returned as is.
    """
    dest_root = Path(dest_root)
    dest_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest_root))
    try:
        try:
            with tarfile.open(archive, mode="r:gz") as tar:
                tar.extractall(tmp, members=_safe_members(tar), filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BundleError(f"cannot unpack {archive}: {exc}") from None
        card = read_card(tmp)
        version = card["version"]
        _require(
            expected_version in (None, version),
            f"archive holds version {version}, expected {expected_version}",
        )
        check_files(tmp, card)
        final = dest_root / version
        if final.exists():
            check_files(final, read_card(final))
            shutil.rmtree(tmp)
            return final
        tmp.chmod(0o755)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# ---------------------------------------------------------------- loading


class LoadedModel:
    """A verified bundle in memory: the card, the adapter and the estimator."""

    __slots__ = ("_order", "_predict_proba", "adapter", "card", "estimator", "path")

    def __init__(self, path: Path, card: dict[str, Any], adapter: Adapter, estimator: Any):
        self.path = path
        self.card = card
        self.adapter = adapter
        self.estimator = estimator
        est_classes = _estimator_classes(estimator)
        if sorted(est_classes) != sorted(card["classes"]):
            raise BundleError(
                f"model classes {est_classes} are not the card's classes {card['classes']}"
            )
        order = [est_classes.index(c) for c in card["classes"]]
        # None when the estimator already answers in card order: no copy per request.
        self._order = None if order == list(range(len(order))) else np.asarray(order)
        self._predict_proba = predict_proba_function(estimator)

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


def load_bundle(bundle_dir: Path) -> LoadedModel:
    """Verify a bundle directory (a `current` symlink is resolved first), then load it."""
    path = Path(bundle_dir).resolve()
    card = read_card(path)
    check_files(path, card)
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


# ---------------------------------------------------------------- quality gate


def check_quality_gate(
    metrics: Mapping[str, Any] | None,
    min_gain: float = DEFAULT_MIN_GAIN,
    *,
    allow_unevaluated: bool = False,
) -> float | None:
    """Refuse a model whose log loss does not beat the base rate's by `min_gain`.

    Returns the gain (base-rate log loss minus model log loss), or None for an
    unevaluated bundle let through by `allow_unevaluated`.
    """
    if metrics is None:
        if allow_unevaluated:
            return None
        raise QualityGateError(
            "quality gate: the bundle has no backtest metrics (made by `package`?);"
            " pass --allow-unevaluated to publish it anyway"
        )
    try:
        model = float(metrics["model"]["log_loss"])
        base = float(metrics["base_rate"]["log_loss"])
    except (KeyError, TypeError, ValueError):
        raise QualityGateError(
            "quality gate: metrics lack model.log_loss or base_rate.log_loss"
        ) from None
    gain = base - model
    if not gain > min_gain:  # also refuses NaN
        raise QualityGateError(
            f"quality gate: model log loss {model:.4f} is not better than the base rate's"
            f" {base:.4f} by {min_gain:g} (gain {gain:+.4f})"
        )
    return gain
