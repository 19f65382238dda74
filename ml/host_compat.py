"""Whether this host can load a bundle: its library versions and its adapter (docs/bundle.md)."""

import platform
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from typing import Any

from ml.adapters import Adapter, AdapterError, adapter_class
from ml.card import BundleError, require


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
        require(
            norm(built[key]) == norm(here[key]),
            f"{label} mismatch: bundle built with {built[key]}, this host has {here[key]}"
            " (major.minor must match)",
        )
    require(
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
    require(
        wanted == installed,
        f"feature code mismatch for adapter {kind!r}: bundle built with version {wanted},"
        f" this host has {installed}",
    )
    return cls
