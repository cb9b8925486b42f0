"""The commands package: one module per sub-command, and the only code that parses arguments or
reads the environment."""
import importlib
import os
import pathlib
import re
import subprocess
import sys

from tfface import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_command_is_a_module_of_the_commands_package():
    for name, (module_name, help_text) in cli.COMMANDS.items():
        assert module_name == f"tfface.commands.{name}", name
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.run), name
        assert help_text


def test_command_modules_import_without_tensorflow():
    # `tfface COMMAND --help` must stay fast: TensorFlow is imported only when a command runs.
    # importlib: `import tfface.commands.import` is a syntax error (`import` is a keyword).
    modules = [module for module, _ in cli.COMMANDS.values()]
    code = f"import importlib, sys, tfface.cli; [importlib.import_module(m) for m in {modules!r}]; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_library_modules_neither_parse_arguments_nor_read_the_environment():
    pattern = re.compile(r"\bimport argparse\b|\bos\.environ\b|\bos\.getenv\b|\bsys\.argv\b")
    package = ROOT / "tfface"
    offenders = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel == "cli.py" or rel.startswith("commands/"):
            continue
        offenders += [f"{rel}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1)
                      if pattern.search(line)]
    assert offenders == []


def test_train_reads_tf_config_and_names_a_bad_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    assert cli.main(["train", "smoke", "--workdir", str(tmp_path / "run")]) == 2
    assert "TF_CONFIG" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
