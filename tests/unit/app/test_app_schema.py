"""The column-wise validator against its row-by-row definition, and schema compilation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.schema import InvalidInputError, SchemaError, compile_schema
from app.suggest import Suggester
from tests.unit.bundle.input_schemas import ACCEPTED

TEAMS = ["Flamengo", "Palmeiras", "São Paulo"]
RECORD = compile_schema(
    {
        "kind": "record",
        "fields": [
            {"name": "a", "type": "string", "enum": TEAMS},
            {"name": "b", "type": "string", "enum": TEAMS},
            {"name": "x", "type": "number", "minimum": 0, "maximum": 10},
            {"name": "s", "type": "string"},
        ],
        "distinct": [["a", "b"]],
    }
)
VECTOR = compile_schema(
    {"kind": "vector", "name": "v", "length": 3, "feature_names": ["x0", "x1", "x2"]}
)

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-20, 20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.sampled_from(TEAMS),
)
valid_record = st.fixed_dictionaries(
    {
        "a": st.sampled_from(TEAMS),
        "b": st.sampled_from(TEAMS),
        "x": st.floats(0, 10),
        "s": st.text(),
    }
)


@st.composite
def record_rows(draw):
    """Mostly valid rows, with some keys replaced by anything, dropped or added."""
    row = draw(valid_record)
    for key in draw(st.sets(st.sampled_from(["a", "b", "x", "s"]), max_size=2)):
        if draw(st.booleans()):
            row[key] = draw(anything)
        else:
            del row[key]
    if draw(st.integers(0, 9)) == 0:
        row["z"] = 1
    return row if draw(st.integers(0, 19)) else draw(anything)


vector_rows = st.one_of(
    st.fixed_dictionaries({"v": st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=3)}),
    st.fixed_dictionaries({"v": st.lists(anything, min_size=2, max_size=4)}),
    anything,
)


def row_ok(schema, row) -> bool:
    try:
        schema.validate([row], ())
    except InvalidInputError:
        return False
    return True


@settings(max_examples=150, deadline=None)
@given(st.lists(record_rows(), min_size=1, max_size=6))
def test_record_batch_is_valid_iff_every_row_is(rows):
    valid = all(row_ok(RECORD, r) for r in rows)
    try:
        columns = RECORD.validate(rows, ("instances",))
    except InvalidInputError as exc:
        assert not valid
        assert exc.total >= 1
        assert all(e.loc[:2][0] == "instances" for e in exc.errors)
        return
    assert valid
    assert all(isinstance(r, dict) for r in rows)
    assert columns["a"] == [r["a"] for r in rows]
    assert np.array_equal(columns["x"], [float(r["x"]) for r in rows])
    assert all(a != b for a, b in zip(columns["a"], columns["b"], strict=True))


@settings(max_examples=150, deadline=None)
@given(st.lists(vector_rows, min_size=1, max_size=6))
def test_vector_batch_is_valid_iff_every_row_is(rows):
    def row_valid(r):
        return (
            isinstance(r, dict)
            and list(r) == ["v"]
            and isinstance(r["v"], list)
            and len(r["v"]) == 3
            and all(type(x) in (int, float) and math.isfinite(x) for x in r["v"])
        )

    expect = all(row_valid(r) for r in rows)
    try:
        columns = VECTOR.validate(rows, ("instances",))
    except InvalidInputError:
        assert not expect
        return
    assert expect
    assert columns["v"].shape == (len(rows), 3) and columns["v"].dtype == np.float64


def test_single_instance_errors_have_no_instance_index():
    with pytest.raises(InvalidInputError) as exc:
        RECORD.validate([{"a": "Flamengo", "b": "Flamengo", "x": 11, "s": "q"}], ())
    assert {(e.loc, e.type) for e in exc.value.errors} == {
        (("b",), "distinct"),
        (("x",), "maximum"),
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"kind": "table"}, "input_schema kind must be 'record' or 'vector', not 'table'"),
        (
            {"kind": "vector", "name": "v", "length": 0, "feature_names": []},
            "vector schema needs a positive integer length",
        ),
        (
            {"kind": "vector", "name": "instances", "length": 2, "feature_names": ["a", "b"]},
            "vector schema name cannot be 'instances': it marks a batch",
        ),
        ({"kind": "record", "fields": []}, "record schema needs a non-empty fields list"),
        (
            {"kind": "record", "fields": [{"name": "a", "type": "date"}]},
            "field 'a': type must be string or number",
        ),
        (
            {"kind": "record", "fields": [{"name": "instances", "type": "string"}]},
            "record field name cannot be 'instances': it marks a batch",
        ),
        (
            {
                "kind": "record",
                "fields": [{"name": "a", "type": "string"}],
                "distinct": [["a", "q"]],
            },
            "distinct group ['a', 'q'] must name two or more different record fields",
        ),
    ],
)
def test_schemas_the_service_cannot_serve(raw, message):
    # The messages are ml.card's (check_input_schema): the app has no rules of its own.
    with pytest.raises(SchemaError) as exc:
        compile_schema(raw)
    assert str(exc.value) == message


def test_example_respects_distinct_fields():
    assert RECORD.example["a"] != RECORD.example["b"]
    RECORD.validate([RECORD.example], ())


@pytest.mark.parametrize("raw", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_example_is_a_valid_request(raw):
    # The OpenAPI example, the form's first values and what the hosts' model check
    # predicts before a release; each of these schemas can be satisfied.
    schema = compile_schema(raw)
    schema.validate([schema.example], ())


@pytest.mark.parametrize(
    ("typo", "first"),
    [
        ("flamengo", "Flamengo"),
        ("Palmeira", "Palmeiras"),
        ("SAO PAULO", "São Paulo"),
        ("Paulo", "São Paulo"),
    ],
)
def test_suggester(typo, first):
    assert Suggester(TEAMS).suggest(typo)[0] == first


def test_suggester_has_nothing_for_nonsense():
    assert Suggester(TEAMS).suggest("zzzzzzzz") == []
