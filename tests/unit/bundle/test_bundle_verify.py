"""Every verification failure is caught before anything is unpickled."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ml import adapters
from ml.adapters.vector import VectorAdapter
from ml.bundle import CARD_FILE, BundleError, host_libraries, load_bundle, verify_bundle

EditCard = Callable[[Path, Callable[[dict[str, Any]], None]], None]


def _set(section: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(card: dict[str, Any]) -> None:
        card[section][key] = value

    return change


def _refused(bundle: Path, unpickle_calls: list[Any], message: str) -> None:
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)
    with pytest.raises(BundleError, match=message):
        verify_bundle(bundle)
    assert unpickle_calls == []


def test_verify_passes_an_intact_bundle_without_unpickling(
    bundle: Path, unpickle_calls: list[Any]
) -> None:
    assert verify_bundle(bundle)["version"] == bundle.name
    assert unpickle_calls == []


def test_tampered_model_file(bundle: Path, unpickle_calls: list[Any]) -> None:
    with (bundle / "model.joblib").open("ab") as fh:
        fh.write(b"\0")
    _refused(bundle, unpickle_calls, r"checksum mismatch for model\.joblib: card says \w+…, file")


def test_missing_file(bundle: Path, unpickle_calls: list[Any]) -> None:
    (bundle / "model.joblib").unlink()
    _refused(bundle, unpickle_calls, r"is missing model\.joblib")


def test_unlisted_file(bundle: Path, unpickle_calls: list[Any]) -> None:
    (bundle / "adapter").mkdir()
    (bundle / "adapter" / "smuggled.py").write_text("print('hi')")
    _refused(bundle, unpickle_calls, r"unlisted files: adapter/smuggled\.py")


def test_wrong_scikit_learn_version_in_card(
    bundle: Path, edit_card: EditCard, unpickle_calls: list[Any]
) -> None:
    edit_card(bundle, _set("libraries", "scikit-learn", "1.0.2"))
    here = host_libraries()["scikit-learn"]
    _refused(
        bundle,
        unpickle_calls,
        f"scikit-learn mismatch: bundle built with 1.0.2, this host has {here}",
    )


def test_wrong_python_minor(bundle: Path, edit_card: EditCard, unpickle_calls: list[Any]) -> None:
    edit_card(bundle, _set("libraries", "python", "3.11.9"))
    _refused(
        bundle, unpickle_calls, r"Python mismatch: bundle built with 3\.11\.9, this host has 3\.12"
    )


def test_wrong_numpy_minor(bundle: Path, edit_card: EditCard, unpickle_calls: list[Any]) -> None:
    edit_card(bundle, _set("libraries", "numpy", "1.26.4"))
    _refused(bundle, unpickle_calls, r"numpy mismatch: bundle built with 1\.26\.4")


def test_python_and_numpy_patch_levels_may_differ(bundle: Path, edit_card: EditCard) -> None:
    here = host_libraries()
    edit_card(bundle, _set("libraries", "python", here["python"].rsplit(".", 1)[0] + ".999"))
    edit_card(bundle, _set("libraries", "numpy", here["numpy"].rsplit(".", 1)[0] + ".999"))
    assert load_bundle(bundle).version == bundle.name


def test_feature_code_mismatch(
    bundle: Path,
    edit_card: EditCard,
    unpickle_calls: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(VectorAdapter, "feature_code_version", 2)
    edit_card(bundle, _set("adapter", "feature_code_version", 1))
    _refused(
        bundle,
        unpickle_calls,
        "feature code mismatch for adapter 'vector': bundle built with version 1, this host has 2",
    )


def test_feature_code_version_where_the_host_has_none(
    bundle: Path, edit_card: EditCard, unpickle_calls: list[Any]
) -> None:
    edit_card(bundle, _set("adapter", "feature_code_version", 3))
    _refused(bundle, unpickle_calls, "bundle built with version 3, this host has None")


def test_unknown_adapter_kind(bundle: Path, edit_card: EditCard, unpickle_calls: list[Any]) -> None:
    edit_card(bundle, _set("adapter", "kind", "nope"))
    _refused(bundle, unpickle_calls, r"unknown adapter kind 'nope' \(this host knows: .*vector")


def test_an_adapter_whose_module_is_missing_breaks_only_its_own_kind(
    bundle: Path,
    tmp_path: Path,
    edit_card: EditCard,
    unpickle_calls: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(adapters.ADAPTERS, "football", "ml.adapters.not_installed:Football")
    assert verify_bundle(bundle)["adapter"]["kind"] == "vector"
    edit_card(bundle, _set("adapter", "kind", "football"))
    _refused(bundle, unpickle_calls, "adapter 'football' is not installed on this host")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read"),
        ("[]", "must be a JSON object"),
        (json.dumps({"card_format": 1}), "lacks name, version"),
    ],
)
def test_malformed_card(
    bundle: Path, unpickle_calls: list[Any], content: str, message: str
) -> None:
    (bundle / CARD_FILE).write_text(content)
    _refused(bundle, unpickle_calls, message)


def test_not_a_bundle(tmp_path: Path, unpickle_calls: list[Any]) -> None:
    _refused(tmp_path, unpickle_calls, "not a bundle: .* has no model_card.json")
