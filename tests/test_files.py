"""tfface.files: atomic outputs survive a full disk, staged folders keep the old one on failure,
strict JSON, and the folder lock excludes a second process and is taken over after a kill -9."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tfface import files


def test_write_json_is_strict(tmp_path):
    path = tmp_path / "a.json"
    files.write_json(path, {"x": float("nan"), "y": [float("inf"), 1.5]})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {"x": None, "y": [None, 1.5]}


def test_full_disk_keeps_previous_file(tmp_path):
    path = tmp_path / "stats.json"
    files.write_json(path, {"good": 1})
    code = (
        "import resource, signal, sys\n"
        "from tfface import files\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))\n"
        "try:\n"
        "    files.write_json(sys.argv[1], {'big': 'x' * 10000})\n"
        "except files.OutputError as err:\n"
        "    sys.exit(files.report('t', err))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert out.returncode == files.EXIT_OUTPUT
    assert str(path) in out.stderr and "size limit" in out.stderr
    assert json.loads(path.read_text()) == {"good": 1}
    assert os.listdir(tmp_path) == ["stats.json"]


def test_atomic_file_refuses_folder_and_symlink(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(files.OutputError, match="folder"):
        files.atomic_write(tmp_path / "d", b"x")
    (tmp_path / "target").write_text("keep")
    os.symlink(tmp_path / "target", tmp_path / "link")
    with pytest.raises(files.OutputError, match="symbolic link"):
        files.atomic_write(tmp_path / "link", b"x")
    assert (tmp_path / "target").read_text() == "keep"


def test_staged_dir_keeps_old_folder_on_failure(tmp_path):
    out = tmp_path / "export"
    with files.staged_dir(out) as stage:
        (open(os.path.join(stage, "f"), "w")).write("1")
    with pytest.raises(files.OutputError, match="--overwrite"):
        with files.staged_dir(out):
            pass
    with pytest.raises(RuntimeError):
        with files.staged_dir(out, overwrite=True) as stage:
            open(os.path.join(stage, "f"), "w").write("2")
            raise RuntimeError("conversion failed")
    assert (out / "f").read_text() == "1"
    assert files.leftovers(tmp_path) == []
    with files.staged_dir(out, overwrite=True) as stage:
        open(os.path.join(stage, "f"), "w").write("3")
    assert (out / "f").read_text() == "3" and sorted(os.listdir(tmp_path)) == ["export"]


def test_read_json_names_the_file(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text('{"a": ')
    with pytest.raises(files.InputError, match="labels.json.*not valid JSON"):
        files.read_json(path)
    with pytest.raises(files.InputError, match="does not exist"):
        files.read_json(tmp_path / "missing.json")


def test_lock_excludes_second_process_and_is_taken_over_after_kill(tmp_path):
    code = (
        "import sys, time\n"
        "from tfface import files\n"
        "with files.DirLock(sys.argv[1], 'holder-test'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(files.LockedError, match=f"pid {proc.pid}.*holder-test"):
            files.DirLock(tmp_path, "second").acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with files.DirLock(tmp_path, "after the kill"):
        assert "after the kill" in (tmp_path / files.LOCK_NAME).read_text()
