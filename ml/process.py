"""`process`: a raw results CSV to the validated, cleaned matches with their features."""

from pathlib import Path

import pandas as pd

from ml.data import clean, read_raw
from ml.features import FEATURE_CODE_VERSION, build_features
from ml.fileio import atomic_output


def process(csv_path: Path, out_path: Path) -> pd.DataFrame:
    """Validate and clean `csv_path`, add the features, write parquet atomically.

    Nothing is written unless every row is valid; a failure while writing leaves no file.
    """
    matches = clean(read_raw(csv_path), source=str(csv_path))
    table = pd.concat([matches, build_features(matches)], axis=1)
    # Which feature code made the columns (parquet keeps pandas' attrs in its metadata).
    table.attrs["feature_code_version"] = FEATURE_CODE_VERSION
    with atomic_output(Path(out_path)) as tmp:
        table.to_parquet(tmp, index=False)
    return table
