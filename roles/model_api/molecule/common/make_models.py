"""Publish test models for the model_api scenarios (controller side, against moto).

  make_models.py BUCKET OUT.json SIGNING_KEY

Packages plain scikit-learn classifiers on a 4-number vector with the project's own
`ml.package` and publishes them with `ml.publish` to s3://BUCKET/models/<version>/:
  good    two loadable models (different versions); the first is written to
          models/production.json, so a new host starts with it
  mismatch  a bundle whose card claims another scikit-learn: checksums pass, the app's
          loader refuses it (the smoke check must catch it before `current` moves)
  corrupt a published model whose archive in the bucket was replaced afterwards: its
          sha256 no longer matches (the download must be refused)
  unsigned  a model published without a signature (refused before any download)
  rehashed  a signed model whose archive and .sha256 were replaced consistently
          afterwards: its signature no longer matches (refused before any download)
Every model but `unsigned` is signed with SIGNING_KEY (hosts trust its .pub).
Writes the versions to OUT.json. The endpoint and credentials come from AWS_* variables.
"""

import json
import sys
import tempfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from ml.bucket import archive_key
from ml.bundle import CARD_FILE
from ml.package import package_estimator
from ml.publish import Published, publish_bundle
from ml.s3 import s3_client
from ml.signing import load_signer


def _bundle(work: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 4))
    y = np.where(x[:, 0] + (seed % 3) * x[:, 1] > 0, "high", "low")
    est = work / f"model-{seed}.joblib"
    joblib.dump(LogisticRegression().fit(x, y), est)
    schema = work / "schema.json"
    schema.write_text(json.dumps({"kind": "vector", "name": "features", "length": 4}))
    return package_estimator(est, schema, work / "bundles", name=f"molecule-{seed}")


def main() -> int:
    bucket, out, signer = sys.argv[1], Path(sys.argv[2]), load_signer(sys.argv[3])
    s3 = s3_client()

    def publish(bundle_dir: Path, *, signed: bool) -> Published:
        return publish_bundle(
            bundle_dir, bucket, allow_unevaluated=True, s3=s3, signer=signer if signed else None
        )

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        good = [publish(_bundle(work, s), signed=True) for s in (1, 2)]

        mismatch_dir = _bundle(work, 3)
        card = json.loads((mismatch_dir / CARD_FILE).read_text())
        card["libraries"]["scikit-learn"] = "1.0.0"
        (mismatch_dir / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
        mismatch = publish(mismatch_dir, signed=True)

        corrupt = publish(_bundle(work, 4), signed=True)
        s3.put_object(Bucket=bucket, Key=archive_key("", corrupt.version), Body=b"not the archive")

        unsigned = publish(_bundle(work, 5), signed=False)

        rehashed = publish(_bundle(work, 6), signed=True)
        other = publish(_bundle(work, 7), signed=False)
        key = archive_key("", rehashed.version)
        for suffix in ("", ".sha256"):  # another model's archive under this version's name
            body = s3.get_object(Bucket=bucket, Key=archive_key("", other.version) + suffix)
            data = body["Body"].read().replace(other.version.encode(), rehashed.version.encode())
            s3.put_object(Bucket=bucket, Key=key + suffix, Body=data)

    production = {"version": good[0].version, "sha256": good[0].sha256}
    s3.put_object(Bucket=bucket, Key="models/production.json", Body=json.dumps(production).encode())
    result = {
        "good": [g.version for g in good],
        "mismatch": mismatch.version,
        "corrupt": corrupt.version,
        "unsigned": unsigned.version,
        "rehashed": rehashed.version,
    }
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
