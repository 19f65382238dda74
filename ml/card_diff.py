"""What a new model's input contract changes for the clients of the one in production.

Compares two model cards (the `input_schema` and `classes` that clients depend on) and
lists each change, marking those that break a client written for the old model:
  removed field          a field the old model took is gone           breaking
  added field            every record field is required                breaking
  changed type           string <-> number                             breaking
  removed values         values the old enum accepted are refused      breaking
  narrowed range         a number bound moved inwards                  breaking
  added constraint       a new `distinct` group                        breaking
  changed kind           record <-> vector                             breaking
  changed vector         another name, length or feature order         breaking
  changed classes        classes added, removed or reordered           breaking
  added values, widened range, removed constraint, relabelled class    compatible

    python -m ml.card_diff PRODUCTION_CARD NEW_CARD [--allow-breaking] [--json]
    python -m ml.card_diff --bucket B [--prefix P] PRODUCTION_VERSION NEW_VERSION [...]

(the second form reads the two published versions' cards from the bucket, in one process:
what a release runs) prints one line per change and exits 0, or 3 when a change breaks clients and
--allow-breaking is not given (its last line says so, and how to release anyway).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ml.bucket import s3_errors, version_prefix
from ml.errors import PalpiteError
from ml.s3 import s3_client

EXIT_BREAKING = 3


@dataclass(frozen=True)
class Change:
    kind: str
    field: str
    detail: str
    breaking: bool

    def line(self) -> str:
        what = "BREAKING" if self.breaking else "compatible"
        where = f" {self.field}" if self.field else ""
        return f"{what}: {self.kind}{where}: {self.detail}"


def _values(values: Sequence[str]) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:8])
    return shown + (f" and {len(values) - 8} more" if len(values) > 8 else "")


def _field_changes(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    if old.get("type") != new.get("type"):
        detail = f"{old.get('type')} -> {new.get('type')}"
        return [Change("changed type", name, detail, True)]
    changes = []
    if "enum" in old or "enum" in new:
        before, after = old.get("enum"), new.get("enum")
        if before is not None and after is not None:
            removed = [v for v in before if v not in set(after)]
            added = [v for v in after if v not in set(before)]
            if removed:
                detail = f"{len(removed)} no longer accepted: {_values(removed)}"
                changes.append(Change("removed values", name, detail, True))
            if added:
                changes.append(Change("added values", name, _values(added), False))
        elif before is None:  # any string before, a closed list now
            changes.append(Change("removed values", name, f"now only {_values(after)}", True))
        else:
            changes.append(Change("added values", name, "any string is accepted now", False))
    for bound, inward in (("minimum", 1), ("maximum", -1)):
        before, after = old.get(bound), new.get(bound)
        if before == after:
            continue
        narrowed = after is not None and (before is None or (after - before) * inward > 0)
        kind = "narrowed range" if narrowed else "widened range"
        changes.append(Change(kind, name, f"{bound} {before} -> {after}", narrowed))
    return changes


def _record_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before = {f["name"]: f for f in old["fields"]}
    after = {f["name"]: f for f in new["fields"]}
    changes = [
        Change("removed field", n, "clients still send it", True) for n in before if n not in after
    ]
    changes += [
        Change("added field", n, f"required ({after[n].get('type')})", True)
        for n in after
        if n not in before
    ]
    for name in before.keys() & after.keys():
        changes += _field_changes(name, before[name], after[name])
    groups_before = {tuple(sorted(g)) for g in old.get("distinct", [])}
    groups_after = {tuple(sorted(g)) for g in new.get("distinct", [])}
    changes += [
        Change("added constraint", "", f"fields {', '.join(g)} must differ", True)
        for g in sorted(groups_after - groups_before)
    ]
    changes += [
        Change("removed constraint", "", f"fields {', '.join(g)} may be equal now", False)
        for g in sorted(groups_before - groups_after)
    ]
    return sorted(changes, key=lambda c: (not c.breaking, c.field, c.kind))


def _vector_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    changes = []
    for key in ("name", "length", "feature_names"):
        if old.get(key) != new.get(key):
            detail = f"{key} {old.get(key)!r} -> {new.get(key)!r}"
            changes.append(Change("changed vector", str(old.get("name", "")), detail, True))
    return changes


def compare_cards(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every change of the input contract and the classes from `old` to `new`."""
    before, after = old["input_schema"], new["input_schema"]
    if before.get("kind") != after.get("kind"):
        detail = f"{before.get('kind')} -> {after.get('kind')}"
        changes = [Change("changed kind", "", detail, True)]
    elif before.get("kind") == "vector":
        changes = _vector_changes(before, after)
    else:
        changes = _record_changes(before, after)
    if list(old["classes"]) != list(new["classes"]):
        detail = f"{list(old['classes'])} -> {list(new['classes'])}"
        changes.append(Change("changed classes", "", detail, True))
    else:
        labels_before, labels_after = old.get("class_labels", {}), new.get("class_labels", {})
        changes += [
            Change(
                "relabelled class", c, f"{labels_before.get(c)!r} -> {labels_after.get(c)!r}", False
            )
            for c in new["classes"]
            if labels_before.get(c) != labels_after.get(c)
        ]
    return changes


def published_cards(bucket: str, prefix: str, *versions: str) -> list[dict[str, Any]]:
    """The model cards of published versions, read from the bucket."""
    s3 = s3_client()
    cards = []
    for version in versions:
        key = f"{version_prefix(prefix, version)}model_card.json"
        with s3_errors("read", bucket, key):
            cards.append(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    return cards


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.card_diff", description=__doc__)
    parser.add_argument("production_card", help="a card file, or a version with --bucket")
    parser.add_argument("new_card", help="a card file, or a version with --bucket")
    parser.add_argument("--bucket", help="read the published versions' cards from this bucket")
    parser.add_argument("--prefix", default="", help="the bucket's key prefix")
    parser.add_argument("--allow-breaking", action="store_true")
    parser.add_argument("--json", action="store_true", help="the changes as one JSON list")
    args = parser.parse_args(argv)
    try:
        if args.bucket:
            versions = (args.production_card, args.new_card)
            old, new = published_cards(args.bucket, args.prefix, *versions)
        else:
            old = json.loads(Path(args.production_card).read_text())
            new = json.loads(Path(args.new_card).read_text())
        changes = compare_cards(old, new)
    except PalpiteError as exc:
        print(f"error: cannot compare the model cards: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: cannot compare the model cards: {exc!r}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([asdict(c) for c in changes]))
    else:
        for change in changes:
            print(change.line())
        if not changes:
            print("no change to the input contract or the classes")
    breaking = [c for c in changes if c.breaking]
    if breaking and not args.allow_breaking:
        print(
            f"error: model {new.get('version')} breaks clients of {old.get('version')}"
            f" ({len(breaking)} breaking change{'s' if len(breaking) > 1 else ''}: "
            f"{'; '.join(c.kind + (' ' + c.field if c.field else '') for c in breaking)});"
            " set release_allow_breaking=true to release it anyway",
            file=sys.stderr,
        )
        return EXIT_BREAKING
    return 0


if __name__ == "__main__":
    sys.exit(main())
