"""The package installs, imports without side effects, and the console script answers."""
import os
import subprocess
import sys

import tfface
from tfface import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(
        [sys.executable, "-m", "tfface.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_version_prints():
    out = _run("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"tfface {tfface.__version__}"


def test_help_lists_every_command():
    out = _run("--help")
    assert out.returncode == 0, out.stderr
    for name in cli.COMMANDS:
        assert name in out.stdout


def test_unknown_command_is_an_error():
    out = _run("frobnicate")
    assert out.returncode != 0
    assert "frobnicate" in out.stderr


def test_import_has_no_side_effects():
    # Importing tfface must not import TensorFlow, configure devices or print anything.
    code = "import sys, tfface; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT)
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert out.stderr == ""


def _imports(path):
    """The tfface modules a file imports (at any depth, function-local imports included)."""
    import ast

    tree = ast.parse(open(path, encoding="utf-8").read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("tfface")}


def _package_imports(package):
    folder = os.path.join(ROOT, "tfface", package)
    result = set()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            result |= _imports(os.path.join(folder, name))
    return result


def test_the_layers_import_downwards_only():
    # layers/ (centre state and maths) sits below losses/: losses import it, never the reverse.
    assert not any(n.startswith("tfface.losses") for n in _package_imports("layers"))
    # Components, foundations and recipes never reach up into training or the commands.
    for package in ("heads", "losses", "layers", "backbones", "data", "eval", "export", "align", "recipes"):
        up = {n for n in _package_imports(package) if n.startswith(("tfface.training", "tfface.commands", "tfface.cli"))}
        if package == "export":
            # load_embedder imports tfface.training only so that a saved FaceModel deserialises.
            up -= {"tfface.training"}
        assert not up, f"tfface/{package} imports {sorted(up)}"
    for module in ("registry.py", "replica.py", "recipe.py"):
        up = {n for n in _imports(os.path.join(ROOT, "tfface", module))
              if n != "tfface" and not n.startswith(("tfface.registry", "tfface.recipes"))}
        assert not up, f"tfface/{module} imports {sorted(up)}"


def test_the_builder_finds_components_through_the_registry_only():
    source = open(os.path.join(ROOT, "tfface", "training", "builder.py"), encoding="utf-8").read()
    for forbidden in ("getattr(", "inspect.", "import inspect", "PartialFC"):
        assert forbidden not in source, forbidden
