"""The bake: a canary that answers its smoke prediction but fails on a share of real
traffic is caught while it serves, and the whole fleet goes back (after test_release.py,
production on a football model).

The canary's bundle is production's model contract (same clubs, classes and card) with an
estimator of stock scikit-learn parts: a SplineTransformer over the rating-difference
feature, fitted on a range that leaves out one fixture (extrapolation="error"), before a
DummyClassifier. It passes the card comparison, the checksum, the library check and the
smoke prediction, then answers 500 for that one fixture, which the load sends as every
other prediction.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer

from ml.adapters.football import STATE_FILE, FootballAdapter
from ml.bundle import write_bundle
from ml.fetch import download_bundle
from tests.e2e.loadclient import Request
from tests.e2e.releasing import (
    PREDICTIONS_PER_SECOND_MAX,
    Env,
    current_link,
    registered_targets,
    release,
    serving,
    under_load,
)

pytestmark = pytest.mark.testbed
CARD_FIELDS = ("name", "adapter", "input_schema", "feature_names", "classes", "class_labels",
               "training_data", "metrics", "extra")  # fmt: skip


def failing_on_one_fixture(env: Env, workdir: Path, version: str) -> tuple[Path, tuple[str, str]]:
    """Production's contract with an estimator that raises for one fixture alone: the one
    with the largest rating difference, beyond the range a SplineTransformer was fitted on
    (extrapolation="error"); every other fixture lies well inside it, floats' last bits
    aside. Returns the bundle and that fixture."""
    shutil.rmtree(workdir / "production", ignore_errors=True)
    production = download_bundle(version, workdir / "production", env.bucket, s3=env.s3)
    card = json.loads((production / "model_card.json").read_text())
    adapter = FootballAdapter.load(production, card)
    teams = card["input_schema"]["fields"][0]["enum"]
    pairs = list(itertools.permutations(teams, 2))
    columns = {"home_team": [h for h, _ in pairs], "away_team": [a for _, a in pairs]}
    features = adapter.transform(columns)
    rating = features[:, 0]
    order = np.argsort(rating)
    failing = order[-1]
    # Fitted from well below the smallest to halfway between the two largest.
    fitted = np.concatenate([features[order[:-1]], features[order[[0, -2]]]])
    fitted[-2, 0] = rating[order[0]] - 1.0
    fitted[-1, 0] = (rating[order[-2]] + rating[failing]) / 2
    seen_ratings = ColumnTransformer([("rating", SplineTransformer(extrapolation="error"), [0])])
    estimator = Pipeline([("seen_ratings", seen_ratings), ("prior", DummyClassifier())])
    classes = card["classes"]
    estimator.fit(fitted, [classes[i % len(classes)] for i in range(len(fitted))])
    with pytest.raises(ValueError):  # the fault is real before it ships
        estimator.predict_proba(features[[failing]])
    estimator.predict_proba(features[order[:-1]])  # and every other fixture is answered
    bundle = write_bundle(
        workdir / "bake",
        estimator,
        {k: card[k] for k in CARD_FIELDS if k in card},
        {STATE_FILE: (production / "adapter" / STATE_FILE).read_bytes()},
    )
    return bundle, pairs[failing]


def test_a_canary_failing_on_real_traffic_breaches_the_bake_and_the_fleet_goes_back(
    env: Env, workdir: Path
) -> None:
    production = env.production()["version"]
    canary, second = env.hosts[0], env.hosts[1]
    teams = sorted(
        env.pointer(f"models/{production}/model_card.json")["input_schema"]["fields"][0]["enum"]
    )
    # The fixture the new model fails on, and one it answers.
    bundle, failing = failing_on_one_fixture(env, workdir, production)
    passing = next(pair for pair in itertools.permutations(teams, 2) if pair != failing)

    def mix(rate: float) -> list[Request]:
        # Two fixtures taking turns, each prediction followed by model-backed GETs, as in
        # load_requests: one prediction in four requests at least.
        gets = [Request("GET", "/model"), Request("GET", "/"), Request("GET", "/health/ready")]
        per_prediction = max(3, math.ceil(rate / PREDICTIONS_PER_SECOND_MAX) - 1)
        # One GET more after the failing fixture: a cycle of odd length. The front door
        # takes turns between the two hosts, so with an even cycle each fixture kept
        # reaching the same host: a clean-clone run sent the failing one to the old host
        # for the whole bake (10 5xx in 1,394 requests on the canary, no breach).
        out: list[Request] = []
        for extra, (home, away) in enumerate((passing, failing)):
            out.append(Request("POST", "/predict", {"home_team": home, "away_team": away}))
            out += [gets[i % len(gets)] for i in range(per_prediction + extra)]
        assert len(out) % 2 == 1
        return out

    run, report, _ = under_load(
        "bake-breach",
        passing,
        lambda: release("bake-breach", "-e", f"release_bundle={bundle}"),
        mix=mix,
    )
    assert run.result.returncode != 0
    output = " ".join(run.output.split())
    assert f"stopped on {canary.name}" in output and "(all or none)" in output
    assert f"the bake of {canary.name} breached: 5xx ratio" in output
    assert "canary: " in output and "old hosts: " in output  # the figures
    steps = [e["event"] for e in run.events[canary.name]]
    assert steps == [
        "start",
        "drained",
        "switched",
        "healthy",
        "registered",
        "failed",
        "rolled_back",
    ]
    assert second.name not in run.events  # never reached
    assert env.production()["version"] == production
    for host in env.hosts:
        assert serving(host) == production
        assert current_link(host) == production
    assert registered_targets() == {h.name for h in env.hosts}
    # What failed: the failing fixture's predictions, on the canary, while it was baking.
    requests = mix(report.rate)
    # Clients reach the canary from its registration, which is noted once the front door
    # has followed it: bound the window by the health gate just before.
    healthy = run.event_time(canary, "healthy")
    rolled_back = run.event_time(canary, "rolled_back")
    failed = [s for s in report.sent if s.status is None or s.status >= 500]
    assert failed, "the canary's faults never reached the load"
    for sample in failed:
        request = requests[sample.seq % len(requests)]
        assert request.json == {"home_team": failing[0], "away_team": failing[1]}, sample
        assert sample.upstream == canary.upstream and healthy <= sample.start <= rolled_back
    assert report.errors == [], report.errors[:5]
