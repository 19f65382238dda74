"""The layers of ml/ and who may import whom (read from the source, nothing imported).

  base      errors, progress, file writes, the S3 client: import nothing else from ml
  football  the football data and features: base and football only
  bundle    bundles, adapters, packaging, publishing, signing, the fleet: base and bundle
  pipeline  the CLI, evaluation, training: anything in ml

app/ serves bundles: it imports base and bundle modules only, never football or pipeline
code (the football adapter is loaded by name from the registry, ml.adapters). Imports in
ml/ form no cycle, lazy ones included. A new module must be placed in a layer here before
this test passes.
"""

import ast
import graphlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BASE = {"ml", "ml.errors", "ml.progress", "ml.fileio", "ml.s3"}
FOOTBALL = {
    "ml.data",
    "ml.rawformat",
    "ml.geo",
    "ml.features",
    "ml.team_state",
    "ml.generate",
    "ml.clubs",
    "ml.adapters.football",
}
BUNDLE = {
    "ml.bundle",
    "ml.card",
    "ml.checksums",
    "ml.host_compat",
    "ml.bundle_write",
    "ml.archive",
    "ml.bundle_load",
    "ml.gate",
    "ml.fastpath",
    "ml.adapters",
    "ml.adapters.vector",
    "ml.package",
    "ml.bucket",
    "ml.publish",
    "ml.fetch",
    "ml.signing",
    "ml.signing_keys",
    "ml.signing_core",
    "ml.artifact_sign",
    "ml.card_diff",
    "ml.bake",
    "ml.fleet_lock",
    "ml.fleet_cli",
    "ml.fleet_run",
}
PIPELINE = {
    "ml.cli",
    "ml.cli_bundle",
    "ml.cli_artifact",
    "ml.__main__",
    "ml.evaluate",
    "ml.train",
    "ml.process",
}
LAYERS = {"base": BASE, "football": FOOTBALL, "bundle": BUNDLE, "pipeline": PIPELINE}

# What each layer may import from ml (an exception: the football adapter registers itself
# through the registry it implements).
ALLOWED = {
    "base": BASE,
    "football": BASE | FOOTBALL,
    "bundle": BASE | BUNDLE,
    "pipeline": BASE | FOOTBALL | BUNDLE | PIPELINE,
    "app": BASE | BUNDLE,
}
EXTRA_ALLOWED = {"ml.adapters.football": {"ml.adapters"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _ml_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((REPO / "ml").rglob("*.py"))}


def ml_imports(path: Path, known: set[str]) -> set[str]:
    """Every ml module `path` imports, at any depth (lazy and TYPE_CHECKING ones too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the file's package
                package = _module_name(path.parent).split(".")
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from ml import fleet_lock` imports the module ml.fleet_lock.
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known)
    return {name for name in found if name == "ml" or name.startswith("ml.")}


def _violations(layer: str, name: str, imported: set[str]) -> list[str]:
    allowed = ALLOWED[layer] | EXTRA_ALLOWED.get(name, set())
    return [f"{name} ({layer}) imports {dep}" for dep in sorted(imported - allowed - {name})]


def test_every_ml_module_is_in_one_layer() -> None:
    modules = set(_ml_modules())
    placed = [name for layer in LAYERS.values() for name in layer]
    assert len(placed) == len(set(placed)), "a module is in two layers"
    unplaced = sorted(modules - set(placed))
    assert not unplaced, f"place these modules in a layer (tests/unit/test_layers.py): {unplaced}"
    gone = sorted(set(placed) - modules)
    assert not gone, f"no such modules any more: {gone}"


def test_ml_modules_import_only_their_own_layer_and_below() -> None:
    modules = _ml_modules()
    known = set(modules)
    problems = []
    for layer, names in LAYERS.items():
        for name in sorted(names & known):
            problems += _violations(layer, name, ml_imports(modules[name], known))
    assert not problems, "\n".join(problems)


def test_ml_imports_have_no_cycles() -> None:
    modules = _ml_modules()
    known = set(modules)
    graph = {name: ml_imports(path, known) - {name} for name, path in modules.items()}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_app_imports_only_base_and_bundle_modules() -> None:
    known = set(_ml_modules())
    paths = sorted((REPO / "app").rglob("*.py"))
    assert len(paths) > 10  # the glob found the app
    problems = []
    for path in paths:
        name = path.relative_to(REPO).as_posix()
        problems += _violations("app", name, ml_imports(path, known))
    assert not problems, "\n".join(problems)


def test_a_violation_is_found(tmp_path: Path) -> None:
    # The checker itself: a lazy import inside a function counts, and so does `from ml import`.
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from ml import train\n    import ml.features\n")
    known = set(_ml_modules())
    imported = ml_imports(source, known)
    assert imported == {"ml", "ml.train", "ml.features"}
    assert _violations("app", "x", imported) == [
        "x (app) imports ml.features",
        "x (app) imports ml.train",
    ]
