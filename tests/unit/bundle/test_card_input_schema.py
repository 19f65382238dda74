"""The input-schema contract (ml.card.check_input_schema), rule by rule with its messages.

The cases live in input_schemas.py, which the app's test of the same contract shares."""

from typing import Any

import pytest
from input_schemas import ACCEPTED, REFUSED

from ml.bundle import BundleError, check_input_schema


@pytest.mark.parametrize("schema", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_the_card_accepts(schema: dict[str, Any]) -> None:
    check_input_schema(schema)


@pytest.mark.parametrize(("schema", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_the_card_refuses_with_one_line(schema: Any, message: str) -> None:
    with pytest.raises(BundleError) as exc:
        check_input_schema(schema)
    assert str(exc.value) == message
