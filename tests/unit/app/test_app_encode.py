"""The answer's JSON, spliced from orjson's matrix output, is exactly what encoding one
dict per row would give, for any probabilities and class names."""

from types import SimpleNamespace

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app.predict import Predictor

CLASS_NAMES = st.lists(st.text(min_size=1, max_size=12), min_size=2, max_size=5, unique=True)
PROBABILITY = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_subnormal=True)


def per_row_dicts(version: str, classes: list[str], proba: np.ndarray) -> bytes:
    rows = [
        {
            "label": classes[int(np.argmax(row))],
            "probabilities": dict(zip(classes, row.tolist(), strict=True)),
        }
        for row in proba
    ]
    return orjson.dumps({"model_version": version, "predictions": rows})


@settings(max_examples=200, deadline=None)
@given(data=st.data(), classes=CLASS_NAMES, version=st.text(max_size=20))
def test_spliced_json_equals_per_row_dicts(data, classes: list[str], version: str) -> None:
    rows = data.draw(st.integers(min_value=1, max_value=40))
    proba = data.draw(arrays(np.float64, (rows, len(classes)), elements=PROBABILITY))
    model = SimpleNamespace(classes=classes, version=version)
    predictor = Predictor(model, schema=None, batch_limit=100)  # type: ignore[arg-type]
    encoded = predictor.encode(proba, proba.argmax(axis=1))
    assert encoded == per_row_dicts(version, classes, proba)
    # Columns reordered into the card's order make a matrix that is not C-contiguous.
    shuffled = proba[:, ::-1]
    encoded = predictor.encode(shuffled, shuffled.argmax(axis=1))
    assert encoded == per_row_dicts(version, classes, shuffled)


def test_class_names_with_json_and_format_characters() -> None:
    classes = ["50%", 'say "hi"', "back\\slash", "ünïcode %s"]
    proba = np.array([[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0], [5e-324, 1 - 5e-324, 0, 0]])
    model = SimpleNamespace(classes=classes, version="v%d")
    predictor = Predictor(model, schema=None, batch_limit=10)  # type: ignore[arg-type]
    encoded = predictor.encode(proba, proba.argmax(axis=1))
    assert encoded == per_row_dicts("v%d", classes, proba)
    assert [p["label"] for p in orjson.loads(encoded)["predictions"]] == [
        "ünïcode %s",
        "50%",
        'say "hi"',
    ]
