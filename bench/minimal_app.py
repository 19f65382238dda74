"""The memory yardstick for bench_api.py: a minimal FastAPI + scikit-learn app, as a team
would first write one (issue "Serving at the Python limit": PSS <= 1.2x this one's).

The same estimator as the packaged vector model (BENCH_MINIMAL_ESTIMATOR, a joblib file),
loaded at import, one pydantic body, `predict_proba` per request. Served by a plain
gunicorn command (`gunicorn -w 2 -k uvicorn_worker.UvicornWorker bench.minimal_app:app`),
without palpite's config: each worker imports and loads on its own.
"""

import os

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

estimator = joblib.load(os.environ["BENCH_MINIMAL_ESTIMATOR"])
app = FastAPI()


class Row(BaseModel):
    features: list[float]


@app.post("/predict")
def predict(row: Row) -> dict[str, object]:
    probabilities = estimator.predict_proba(np.asarray([row.features]))[0]
    label = estimator.classes_[int(np.argmax(probabilities))]
    return {
        "predictions": [
            {
                "label": str(label),
                "probabilities": dict(
                    zip(map(str, estimator.classes_), map(float, probabilities), strict=True)
                ),
            }
        ]
    }
