"""The input-contract check before a release (ml/card_diff.py): every kind of change."""

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from ml.card_diff import EXIT_BREAKING, compare_cards, main

CLUBS = ["Flamengo", "Palmeiras", "Santos", "Vasco"]


def record_card() -> dict[str, Any]:
    return {
        "version": "20260101T000000Z-aaaaaaaa",
        "input_schema": {
            "kind": "record",
            "fields": [
                {"name": "home_team", "type": "string", "enum": list(CLUBS)},
                {"name": "away_team", "type": "string", "enum": list(CLUBS)},
                {"name": "attendance", "type": "number", "minimum": 0, "maximum": 80000},
            ],
            "distinct": [["home_team", "away_team"]],
        },
        "classes": ["home_win", "draw", "away_win"],
        "class_labels": {"home_win": "Home win", "draw": "Draw", "away_win": "Away win"},
    }


def vector_card() -> dict[str, Any]:
    names = ["x0", "x1", "x2"]
    schema = {"kind": "vector", "name": "features", "length": 3, "feature_names": names}
    return {"input_schema": schema, "classes": ["a", "b"], "class_labels": {}}


def field(card: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [f for f in card["input_schema"]["fields"] if f["name"] == name]
    return found


def kinds(old: dict[str, Any], new: dict[str, Any]) -> set[tuple[str, str, bool]]:
    return {(c.kind, c.field, c.breaking) for c in compare_cards(old, new)}


def test_the_same_card_changes_nothing() -> None:
    assert compare_cards(record_card(), record_card()) == []
    assert compare_cards(vector_card(), vector_card()) == []


def test_removed_and_added_fields_break_clients() -> None:
    old, new = record_card(), record_card()
    new["input_schema"]["fields"] = [
        f for f in new["input_schema"]["fields"] if f["name"] != "attendance"
    ]
    new["input_schema"]["fields"].append({"name": "referee", "type": "string"})
    assert kinds(old, new) == {
        ("removed field", "attendance", True),
        ("added field", "referee", True),
    }


def test_fewer_accepted_values_break_clients_and_more_do_not() -> None:
    old, new = record_card(), record_card()
    field(new, "home_team")["enum"] = ["Flamengo", "Palmeiras", "Bahia"]
    changes = {(c.kind, c.field): c for c in compare_cards(old, new)}
    removed = changes[("removed values", "home_team")]
    assert removed.breaking
    assert removed.detail == "2 no longer accepted: 'Santos', 'Vasco'"
    assert not changes[("added values", "home_team")].breaking
    # A closed list where any string went before is fewer values; the reverse is more.
    free = record_card()
    del field(free, "away_team")["enum"]
    assert ("removed values", "away_team", True) in kinds(free, record_card())
    assert ("added values", "away_team", False) in kinds(record_card(), free)


def test_a_changed_type_breaks_clients() -> None:
    old, new = record_card(), record_card()
    field(new, "attendance").update(type="string")
    field(new, "attendance").pop("minimum")
    field(new, "attendance").pop("maximum")
    assert kinds(old, new) == {("changed type", "attendance", True)}


def test_a_narrowed_range_breaks_clients_and_a_widened_one_does_not() -> None:
    old, new = record_card(), record_card()
    field(new, "attendance").update(minimum=100, maximum=90000)
    assert kinds(old, new) == {
        ("narrowed range", "attendance", True),
        ("widened range", "attendance", False),
    }
    unbounded = record_card()
    del field(unbounded, "attendance")["maximum"]
    assert kinds(unbounded, record_card()) == {("narrowed range", "attendance", True)}
    assert kinds(record_card(), unbounded) == {("widened range", "attendance", False)}


def test_a_new_distinct_constraint_breaks_clients_and_a_removed_one_does_not() -> None:
    loose = record_card()
    loose["input_schema"]["distinct"] = []
    assert kinds(loose, record_card()) == {("added constraint", "", True)}
    assert kinds(record_card(), loose) == {("removed constraint", "", False)}


def test_changed_or_reordered_classes_break_clients_and_new_labels_do_not() -> None:
    old = record_card()
    reordered = copy.deepcopy(old)
    reordered["classes"] = ["draw", "home_win", "away_win"]
    assert kinds(old, reordered) == {("changed classes", "", True)}
    fewer = copy.deepcopy(old)
    fewer["classes"] = ["home_win", "away_win"]
    assert kinds(old, fewer) == {("changed classes", "", True)}
    relabelled = copy.deepcopy(old)
    relabelled["class_labels"]["draw"] = "Tie"
    assert kinds(old, relabelled) == {("relabelled class", "draw", False)}


def test_vector_and_kind_changes_break_clients() -> None:
    old = vector_card()
    for key, value in (("name", "x"), ("length", 4), ("feature_names", ["x1", "x0", "x2"])):
        new = vector_card()
        new["input_schema"][key] = value
        assert kinds(old, new) == {("changed vector", "features", True)}, key
    assert kinds(
        record_card(), vector_card() | {k: record_card()[k] for k in ("classes", "class_labels")}
    ) == {("changed kind", "", True)}


def write(tmp_path: Path, name: str, card: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(card))
    return path


def test_the_command_refuses_a_breaking_change_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = record_card()
    new = record_card() | {"version": "20260201T000000Z-bbbbbbbb"}
    field(new, "home_team")["enum"] = CLUBS[:2]
    args = [str(write(tmp_path, "old.json", old)), str(write(tmp_path, "new.json", new))]
    assert main(args) == EXIT_BREAKING
    out, err = capsys.readouterr()
    assert out == "BREAKING: removed values home_team: 2 no longer accepted: 'Santos', 'Vasco'\n"
    assert err.count("\n") == 1
    assert err.startswith("error: model 20260201T000000Z-bbbbbbbb breaks clients of 20260101")
    assert "release_allow_breaking=true" in err
    assert main([*args, "--allow-breaking"]) == 0
    assert capsys.readouterr().err == ""  # listed, not refused
    assert main([*args, "--json"]) == EXIT_BREAKING
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {
            "kind": "removed values",
            "field": "home_team",
            "detail": "2 no longer accepted: 'Santos', 'Vasco'",
            "breaking": True,
        }
    ]


def test_the_command_says_so_when_nothing_changed_and_on_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = str(write(tmp_path, "card.json", record_card()))
    assert main([same, same]) == 0
    assert capsys.readouterr().out == "no change to the input contract or the classes\n"
    assert main([same, str(tmp_path / "missing.json")]) == 1
    assert capsys.readouterr().err.startswith("error: cannot compare the model cards")


def test_the_command_reads_published_cards_from_the_bucket(
    moto_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    old = record_card()
    new = record_card() | {"version": "20260201T000000Z-bbbbbbbb"}
    field(new, "home_team")["enum"] = CLUBS[:2]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cards")
    for card in (old, new):
        key = f"team/models/{card['version']}/model_card.json"
        s3.put_object(Bucket="cards", Key=key, Body=json.dumps(card).encode())
    args = ["--bucket=cards", "--prefix=team", old["version"], new["version"]]
    assert main(args) == EXIT_BREAKING
    assert capsys.readouterr().out.startswith("BREAKING: removed values home_team")
    assert main([*args, "--allow-breaking"]) == 0
    capsys.readouterr()
    # A version that is not published: one line saying which key, no traceback.
    assert main(["--bucket=cards", "--prefix=team", old["version"], "20990101T000000Z-x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "s3://cards/team/models/20990101T000000Z-x/model_card.json" in err
