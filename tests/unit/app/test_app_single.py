"""The single-instance paths of Predictor.run: the answer table of an all-enum schema and
the pure-Python row of a small linear vector model give what the general path gives
(the table byte for byte, the row within the fast path's tolerance of scikit-learn), and
every instance they do not know still gets the general path's answer or error."""

from itertools import permutations
from pathlib import Path

import numpy as np
import orjson
import pytest
from record_adapter import TEAMS

from app.errors import ApiError
from app.metrics import Metrics
from app.predict import Predictor
from app.schema import compile_schema
from app.v2_codec import Codec
from app.v2_metadata import row_tensors
from ml.bundle import load_bundle
from ml.fastpath import PROBE_TOLERANCE


def predictor(bundle: Path, metrics: Metrics | None = None) -> Predictor:
    model = load_bundle(bundle)
    return Predictor(model, compile_schema(model.input_schema), 100, metrics)


def general(p: Predictor, instance: object) -> bytes:
    """The answer through the column-wise path (validate, predict, encode)."""
    scores = p.score([instance], ())
    return p.encode(scores.proba, scores.winners)


def error_of(call) -> dict:
    with pytest.raises(ApiError) as info:
        call()
    return info.value.body()


def test_every_pairing_is_answered_from_the_table_exactly(pairs_bundle: Path) -> None:
    p = predictor(pairs_bundle)
    pairings = list(permutations(TEAMS, 2))
    assert len(p._answers) == len(pairings)  # the same team twice is refused, not tabled
    model = p.model
    for home, away in pairings:
        instance = {"home_team": home, "away_team": away}
        body = p.run(orjson.dumps(instance)).body
        assert body == general(p, instance)
        # and it is scikit-learn's prediction for that pairing
        features = model.adapter.transform({"home_team": [home], "away_team": [away]})
        got = orjson.loads(body)["predictions"][0]["probabilities"]
        want = dict(
            zip(model.estimator.classes_, model.estimator.predict_proba(features)[0], strict=True)
        )
        for label, value in got.items():
            assert abs(value - want[label]) <= PROBE_TOLERANCE


def test_field_order_in_the_body_does_not_matter(pairs_bundle: Path) -> None:
    p = predictor(pairs_bundle)
    swapped = orjson.dumps({"away_team": TEAMS[1], "home_team": TEAMS[0]})
    assert p.run(swapped).body == general(p, {"home_team": TEAMS[0], "away_team": TEAMS[1]})
    assert p.run(swapped).body != general(p, {"home_team": TEAMS[1], "away_team": TEAMS[0]})


@pytest.mark.parametrize(
    "instance",
    [
        {"home_team": TEAMS[0], "away_team": TEAMS[0]},
        {"home_team": TEAMS[0], "away_team": "Nowhere FC"},
        {"home_team": TEAMS[0]},
        {"home_team": TEAMS[0], "away_team": TEAMS[1], "extra": 1},
        {"home_team": TEAMS[0], "visitor": TEAMS[1]},
        {"home_team": [TEAMS[0]], "away_team": TEAMS[1]},
        {"home_team": 1, "away_team": TEAMS[1]},
        {"home_team": None, "away_team": TEAMS[1]},
    ],
    ids=["same", "unknown", "missing", "extra", "renamed", "list", "number", "null"],
)
def test_instances_outside_the_table_get_the_general_error(pairs_bundle: Path, instance) -> None:
    p = predictor(pairs_bundle)
    assert error_of(lambda: p.run(orjson.dumps(instance))) == error_of(lambda: general(p, instance))


def test_table_answers_count_their_predictions(pairs_bundle: Path) -> None:
    metrics = Metrics()
    p = predictor(pairs_bundle, metrics)
    instance = {"home_team": TEAMS[2], "away_team": TEAMS[3]}
    prediction = p.run(orjson.dumps(instance))
    label = orjson.loads(prediction.body)["predictions"][0]["label"]
    assert metrics.predictions.labels(label)._value.get() == 1
    assert prediction.label_counts.tolist() == [int(c == label) for c in p.classes]


def test_pairings_the_estimator_raises_on_fail_per_request_and_the_rest_are_tabled(
    pairs_bundle_failing_for_one_team: Path,
) -> None:
    p = predictor(pairs_bundle_failing_for_one_team)  # the model loads
    failing = {"home_team": TEAMS[-1], "away_team": TEAMS[0]}
    answered = {"home_team": TEAMS[0], "away_team": TEAMS[-1]}
    assert len(p._answers) == (len(TEAMS) - 1) ** 2
    assert p.run(orjson.dumps(answered)).body == general(p, answered)
    with pytest.raises(ValueError, match="beyond the limits of the knots"):
        p.run(orjson.dumps(failing))


def test_schemas_with_numbers_have_no_table(record_bundle: Path, vector_bundle: Path) -> None:
    assert predictor(record_bundle)._answers == {}
    assert predictor(vector_bundle)._answers == {}


def test_vector_single_rows_take_the_row_path_within_tolerance(vector_bundle: Path) -> None:
    p = predictor(vector_bundle)
    assert p.model._predict_row is not None
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(300, 4)) * rng.choice([0.1, 1, 10, 100], size=(300, 1))
    want = p.model.estimator.predict_proba(rows)
    classes = list(p.model.estimator.classes_)
    for row, expected in zip(rows.tolist(), want, strict=True):
        answer = orjson.loads(p.run(orjson.dumps({"features": row})).body)["predictions"][0]
        got = [answer["probabilities"][c] for c in classes]
        assert np.abs(np.array(got) - expected).max() <= PROBE_TOLERANCE
        assert answer["label"] == classes[int(np.argmax(got))]
        assert list(answer["probabilities"]) == p.classes


@pytest.mark.parametrize(
    "instance",
    [
        {"features": [1, 2, 3]},
        {"features": [1, 2, 3, "4"]},
        {"features": [1, 2, 3, True]},
        {"features": [1, 2, 3, 4], "extra": 1},
        {"other": [1, 2, 3, 4]},
    ],
    ids=["short", "string", "bool", "extra", "renamed"],
)
def test_vector_rows_outside_the_row_path_get_the_general_error(
    vector_bundle: Path, instance
) -> None:
    p = predictor(vector_bundle)
    assert error_of(lambda: p.run(orjson.dumps(instance))) == error_of(lambda: general(p, instance))


def test_vector_integers_and_extremes_answer_as_numbers(vector_bundle: Path) -> None:
    p = predictor(vector_bundle)
    for row in ([1, 2, 3, 4], [1e300, -1e300, 0, 0], [0.0, 0.0, 0.0, 0.0]):
        got = orjson.loads(p.run(orjson.dumps({"features": row})).body)["predictions"][0]
        want = orjson.loads(general(p, {"features": row}))["predictions"][0]
        assert got["label"] == want["label"]
        for label, value in want["probabilities"].items():
            assert abs(got["probabilities"][label] - value) <= PROBE_TOLERANCE


def v2_general(p: Predictor, codec: Codec, body: bytes) -> bytes:
    request = codec.decode(body, p.check_batch_size)
    return codec.encode(request, p.score(request.instances, codec.loc))


def test_v2_infer_of_a_tabled_instance_is_the_general_answer(
    pairs_bundle: Path, monkeypatch
) -> None:
    metrics = Metrics()
    p = predictor(pairs_bundle, metrics)
    codec = Codec(p.schema, p.classes, "test-record", "-")
    bodies = [
        orjson.dumps({"inputs": row_tensors(codec, {"home_team": h, "away_team": a})})
        for h, a in permutations(TEAMS[:3], 2)
    ]
    expected = [v2_general(p, codec, body) for body in bodies]
    monkeypatch.setattr(p, "score", None)  # the table answers: no general path
    assert [p.infer(codec, body) for body in bodies] == expected
    assert sum(c._value.get() for c in metrics._prediction_children.values()) == 12  # 6 x 2


def test_v2_infer_of_a_vector_row_within_tolerance(vector_bundle: Path) -> None:
    p = predictor(vector_bundle)
    codec = Codec(p.schema, p.classes, "clf", "-")
    body = orjson.dumps({"inputs": row_tensors(codec, {"features": [0.3, -2.0, 1.5, 4.0]})})
    got, want = orjson.loads(p.infer(codec, body)), orjson.loads(v2_general(p, codec, body))
    assert [o["name"] for o in got["outputs"]] == [o["name"] for o in want["outputs"]]
    for g, w in zip(got["outputs"], want["outputs"], strict=True):
        if w["datatype"] == "FP64":
            assert np.abs(np.array(g["data"]) - np.array(w["data"])).max() <= PROBE_TOLERANCE
        else:
            assert g == w
