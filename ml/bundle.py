"""The model bundle's public API: write, archive, unpack, verify and load (docs/bundle.md).

Each job lives in its own module, and this one re-exports their public names, so callers
import from `ml.bundle` alone:
  ml.card          the card's file names, its structure and the input schema; BundleError
  ml.checksums     the files against the card (check_files, verified_card)
  ml.host_compat   library versions and adapter against this host
  ml.bundle_write  write_bundle
  ml.archive       archive_bundle, unpack_archive
  ml.bundle_load   verify_bundle, load_bundle, LoadedModel
  ml.gate          the quality gate
"""

from ml.archive import archive_bundle, unpack_archive
from ml.bundle_load import LoadedModel, load_bundle, verify_bundle
from ml.bundle_write import write_bundle
from ml.card import (
    ADAPTER_DIR,
    CARD_FILE,
    CARD_FORMAT,
    MODEL_FILE,
    SIGNATURE_FILE,
    BundleError,
    check_input_schema,
    read_card,
)
from ml.checksums import check_files, verified_card
from ml.fileio import sha256_file
from ml.gate import DEFAULT_MIN_GAIN, QualityGateError, check_quality_gate
from ml.host_compat import check_host, host_libraries

__all__ = [
    "ADAPTER_DIR",
    "CARD_FILE",
    "CARD_FORMAT",
    "DEFAULT_MIN_GAIN",
    "MODEL_FILE",
    "SIGNATURE_FILE",
    "BundleError",
    "LoadedModel",
    "QualityGateError",
    "archive_bundle",
    "check_files",
    "check_host",
    "check_input_schema",
    "check_quality_gate",
    "host_libraries",
    "load_bundle",
    "read_card",
    "sha256_file",
    "unpack_archive",
    "verified_card",
    "verify_bundle",
    "write_bundle",
]
