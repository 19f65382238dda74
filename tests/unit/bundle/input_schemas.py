"""Input schemas on both sides of the contract (ml.card.check_input_schema), shared by the
card's own test (test_card_input_schema.py) and the app's (test_app_schema_contract.py):
what the card accepts the app must compile; what it refuses the app refuses alike."""

from typing import Any

TEAMS = ["Flamengo", "Palmeiras", "Vasco"]


def record(*fields: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {"kind": "record", "fields": list(fields), **rest}


def vector(**rest: Any) -> dict[str, Any]:
    return {"kind": "vector", "name": "v", "length": 3, "feature_names": ["a", "b", "c"], **rest}


A = {"name": "a", "type": "string"}
B = {"name": "b", "type": "string"}
N = {"name": "n", "type": "number"}

# id -> a schema the card accepts.
ACCEPTED: dict[str, dict[str, Any]] = {
    "vector": vector(),
    "vector of one": {"kind": "vector", "name": "x", "length": 1, "feature_names": ["only"]},
    "vector as ml package writes it": {
        "kind": "vector",
        "name": "features",
        "length": 4,
        "feature_names": ["x0", "x1", "x2", "x3"],
    },
    "football": record(
        {"name": "home_team", "type": "string", "label": "Home team", "enum": TEAMS},
        {"name": "away_team", "type": "string", "label": "Away team", "enum": TEAMS},
        distinct=[["home_team", "away_team"]],
    ),
    "one string field": record(A),
    "one number field": record(N),
    "bounds": record({**N, "minimum": -30, "maximum": 50.5}),
    "one allowed number": record({**N, "minimum": 7, "maximum": 7}),
    "only a minimum": record({**N, "minimum": 5}),
    "only a negative maximum": record({**N, "maximum": -5}),
    "empty label": record({**A, "label": ""}),
    "no distinct key": record(A, B),
    "empty distinct": record(A, B, distinct=[]),
    "three-field group": record(
        {**A, "enum": TEAMS},
        {**B, "enum": TEAMS},
        {"name": "c", "type": "string"},
        distinct=[["a", "b", "c"]],
    ),
    "two groups on mixed types": record(A, B, N, distinct=[["a", "b"], ["a", "n"]]),
    "distinct numbers in a narrow range": record(
        {**N, "minimum": 0, "maximum": 0.5},
        {"name": "m", "type": "number", "minimum": 0, "maximum": 0.5},
        distinct=[["n", "m"]],
    ),
}

# id -> (a schema the card refuses, ml.card's message). Those marked *app* the app's own
# schema parsing used to accept (before it compiled only what ml.card had checked), those
# marked *card* the card used to accept, those marked *both* both did (cards no request
# could satisfy, or bounds that do nothing); a null `distinct` made the card raise TypeError.
REFUSED: dict[str, tuple[Any, str]] = {
    "not an object": ([], "input_schema must be an object"),
    "no kind": ({}, "input_schema kind must be 'record' or 'vector', not None"),
    "unknown kind": (
        {"kind": "table"},
        "input_schema kind must be 'record' or 'vector', not 'table'",
    ),
    # vector
    "vector without a name": (vector(name=None), "vector schema needs a name"),
    "vector with an empty name": (vector(name=""), "vector schema needs a name"),
    "*card* vector named instances": (
        vector(name="instances"),
        "vector schema name cannot be 'instances': it marks a batch",
    ),
    "vector of length 0": (vector(length=0), "vector schema needs a positive integer length"),
    "vector of length true": (vector(length=True), "vector schema needs a positive integer length"),
    "vector of length 3.0": (vector(length=3.0), "vector schema needs a positive integer length"),
    "*app* vector without feature_names": (
        {"kind": "vector", "name": "v", "length": 3},
        "vector schema feature_names must be 3 names",
    ),
    "vector with too few feature_names": (
        vector(feature_names=["a", "b"]),
        "vector schema feature_names must be 3 names",
    ),
    "*app* vector with a number for a feature name": (
        vector(feature_names=["a", 1, "c"]),
        "vector schema feature_names must be 3 names",
    ),
    "*app* vector with an empty feature name": (
        vector(feature_names=["a", "", "c"]),
        "vector schema feature_names must be 3 names",
    ),
    # record fields
    "record without fields": (record(), "record schema needs a non-empty fields list"),
    "record with fields not a list": (
        {"kind": "record", "fields": {"a": A}},
        "record schema needs a non-empty fields list",
    ),
    "field not an object": (record("a"), "record schema fields must be objects"),
    "field without a name": (record({"type": "string"}), "every record field needs a name"),
    "*app* field with an empty name": (
        record({"name": "", "type": "string"}),
        "every record field needs a name",
    ),
    "*card* field named instances": (
        record({"name": "instances", "type": "string"}),
        "record field name cannot be 'instances': it marks a batch",
    ),
    "field twice": (record(A, {**A, "type": "number"}), "record field 'a' appears twice"),
    "field of type date": (
        record({"name": "a", "type": "date"}),
        "field 'a': type must be string or number",
    ),
    "field without a type": (record({"name": "a"}), "field 'a': type must be string or number"),
    "*app* null label": (record({**A, "label": None}), "field 'a': label must be a string"),
    "enum on a number field": (
        record({**N, "enum": ["1"]}),
        "field 'n': enum must be a non-empty list of strings on a string field",
    ),
    "empty enum": (
        record({**A, "enum": []}),
        "field 'a': enum must be a non-empty list of strings on a string field",
    ),
    "*app* enum as a string": (
        record({**A, "enum": "xyz"}),
        "field 'a': enum must be a non-empty list of strings on a string field",
    ),
    "*app* enum with an empty string": (
        record({**A, "enum": ["x", ""]}),
        "field 'a': enum must be a non-empty list of strings on a string field",
    ),
    "*app* null enum": (
        record({**A, "enum": None}),
        "field 'a': enum must be a non-empty list of strings on a string field",
    ),
    "*app* minimum on a string field": (
        record({**A, "minimum": 0}),
        "field 'a': minimum must be a finite number on a number field",
    ),
    "*app* maximum as a string": (
        record({**N, "maximum": "10"}),
        "field 'n': maximum must be a finite number on a number field",
    ),
    "*app* minimum true": (
        record({**N, "minimum": True}),
        "field 'n': minimum must be a finite number on a number field",
    ),
    # record distinct
    "*app* null distinct": (
        record(A, B, distinct=None),
        "distinct must be a list of field groups",
    ),
    "distinct not a list": (
        record(A, B, distinct={"a": "b"}),
        "distinct must be a list of field groups",
    ),
    "*app* one-field group": (
        record(A, B, distinct=[["a"]]),
        "distinct group ['a'] must name two or more different record fields",
    ),
    "*app* empty group": (
        record(A, B, distinct=[[]]),
        "distinct group [] must name two or more different record fields",
    ),
    "group naming an unknown field": (
        record(A, B, distinct=[["a", "q"]]),
        "distinct group ['a', 'q'] must name two or more different record fields",
    ),
    "*both* group naming a field twice": (
        record(A, B, distinct=[["a", "a"]]),
        "distinct group ['a', 'a'] must name two or more different record fields",
    ),
    "*both* NaN minimum": (
        record({**N, "minimum": float("nan")}),
        "field 'n': minimum must be a finite number on a number field",
    ),
    "*both* infinite maximum": (
        record({**N, "maximum": float("inf")}),
        "field 'n': maximum must be a finite number on a number field",
    ),
    "*both* minimum over maximum": (
        record({**N, "minimum": 5, "maximum": 1}),
        "field 'n': minimum 5 is over maximum 1",
    ),
    "group not a list": (
        record(A, B, distinct=["ab"]),
        "distinct group 'ab' must name two or more different record fields",
    ),
}
