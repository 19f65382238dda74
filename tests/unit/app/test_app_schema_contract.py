"""One input-schema contract: every schema ml.card accepts compiles in the app, and every
schema it refuses compile_schema refuses with ml.card's message (the app has no rules of
its own). The cases are the card test's (tests/unit/bundle/input_schemas.py), and
hypothesis adds schemas near the edges of the rules."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.schema import SchemaError, compile_schema
from ml.bundle import BundleError, check_input_schema
from tests.unit.bundle.input_schemas import ACCEPTED, REFUSED


def _compiles(schema: dict[str, Any]) -> None:
    compiled = compile_schema(schema)
    assert compiled.kind == schema["kind"]
    compiled.instance_json_schema()
    assert compiled.form_fields()


@pytest.mark.parametrize("schema", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_what_the_card_accepts_the_app_compiles(schema: dict[str, Any]) -> None:
    _compiles(schema)  # and test_app_schema.py: its example is a valid request


@pytest.mark.parametrize(("schema", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_what_the_card_refuses_the_app_refuses_alike(schema: Any, message: str) -> None:
    with pytest.raises(SchemaError) as exc:
        compile_schema(schema)
    assert str(exc.value) == message


def mostly(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """Usually one of `good`, now and then one of `bad`, so that many schemas pass."""
    return st.sampled_from(good * 6 + bad)


names = mostly(["a", "b", "c", "d"], ["", "instances", 1, None])
labels = mostly(["A", ""], [None, 3])
string_field = st.fixed_dictionaries(
    {"type": st.just("string")},
    optional={"label": labels, "enum": mostly([["x", "y"], ["x"]], [[], ["x", ""], "xy", None])},
)
number_field = st.fixed_dictionaries(
    {"type": st.just("number")},
    optional={
        "label": labels,
        "minimum": mostly([0, -1.5], ["0", True]),
        "maximum": mostly([10, -5], ["9"]),
    },
)
odd_field = st.fixed_dictionaries(
    {"type": st.sampled_from(["date", None, "string", "number"])},
    optional={"enum": st.just(["x"]), "minimum": st.just(0)},
)
a_field = st.one_of(string_field, number_field, string_field, number_field, odd_field)


@st.composite
def record(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(mostly([1, 2, 3, 4], [0]))
    fields = [
        {"name": draw(mostly([name], ["", "instances", 1, None, "a"])), **draw(a_field)}
        for name in ["a", "b", "c", "d"][:count]
    ]
    schema = {"kind": "record", "fields": fields}
    known = [f["name"] for f in fields]
    good = st.lists(st.sampled_from(known), min_size=2, max_size=3, unique=True)
    odd = st.lists(st.sampled_from([*known, "q", ""]), max_size=3)
    groups = st.lists(st.one_of(good, good, odd) if count > 1 else odd, min_size=1, max_size=2)
    distinct = draw(st.one_of(groups, groups, st.sampled_from(["absent", None, []])))
    if distinct != "absent":
        schema["distinct"] = distinct
    return schema


vector = st.builds(
    lambda name, length, names, fit: {
        "kind": "vector",
        "name": name,
        "length": length,
        "feature_names": [f"f{i}" for i in range(int(length))] if fit else names,
    },
    names,
    mostly([1, 2, 3], [0, True, 2.0]),
    st.lists(names, max_size=3),
    mostly([True], [False]),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(record(), record(), vector, st.sampled_from([[], {"kind": "table"}])))
def test_near_misses_are_judged_by_the_card_alone(schema: Any) -> None:
    try:
        check_input_schema(schema)
    except BundleError as refused:
        with pytest.raises(SchemaError) as exc:
            compile_schema(schema)
        assert str(exc.value) == str(refused)
    else:
        _compiles(schema)
