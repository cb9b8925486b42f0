"""Safe outputs: atomic files and folders, strict JSON, and one lock per output folder.

Every file or folder a tfface command produces goes through this module, so an interruption, a
full disk or a second process never leaves a partial output where a good one was:

* :func:`atomic_file` / :func:`atomic_write` / :func:`write_json` — write to a temporary name in
  the same folder, flush and ``fsync``, then ``os.replace`` onto the final name. A failure removes
  the temporary file and leaves the previous file untouched.
* :func:`staged_dir` — build a whole folder (an export, a TFRecord build) under a hidden staging
  name beside it; on success the previous folder (if any) is swapped out and removed only once
  the new one is in place.
* :func:`json_safe` / :func:`write_json` — strict JSON: non-finite floats become ``null``
  (Python's ``json`` writes a bare ``NaN`` that strict parsers reject).
* :class:`DirLock` — an exclusive lock on a work or output folder (``fcntl.flock`` on
  ``.tfface.lock``): a second process fails at once with :class:`LockedError` naming the holder;
  the kernel drops the lock when its holder dies (``kill -9`` included), so a stale lock file is
  taken over without a word. Locks are per host: on a network file system shared by several
  machines, ``flock`` may not exclude across them.

Errors that a command reports to the user derive from :class:`TfFaceError`, which carries the
exit status documented in ``docs/reliability.md`` (:data:`EXIT_INPUT`, :data:`EXIT_OUTPUT`,
:data:`EXIT_BUSY`). Importing this module imports no TensorFlow.
"""
import contextlib
import errno
import json
import math
import os
import shutil
import socket
import sys
import time

# Exit statuses of every command (docs/reliability.md).
EXIT_OK = 0
EXIT_NONFINITE = 1      # training stopped on a non-finite loss (the last good checkpoint kept)
EXIT_INPUT = 2          # bad arguments, recipe, data, model or weight file
EXIT_OUTPUT = 3         # an output cannot be written: unwritable folder, full disk, path in the way
EXIT_BUSY = 4           # the work/output folder is locked by another running process
EXIT_INTERRUPTED = 130  # Ctrl-C

LOCK_NAME = ".tfface.lock"

# errno values that mean "this output cannot be written" rather than a bug.
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM,
                           errno.EROFS, errno.ENOTDIR, errno.EISDIR})


class TfFaceError(Exception):
    """An expected failure with a message for the user and the command's exit status."""

    exit_code = EXIT_INPUT


class InputError(TfFaceError, ValueError):
    """A bad argument, file or value; the message names it and what was expected."""

    exit_code = EXIT_INPUT


class OutputError(TfFaceError, OSError):
    """An output cannot be written (permissions, full disk, a file in the way)."""

    exit_code = EXIT_OUTPUT


class LockedError(TfFaceError, RuntimeError):
    """Another live process holds the lock of a work or output folder."""

    exit_code = EXIT_BUSY


def describe_os_error(err, action="write"):
    """A one-line message for an ``OSError`` of an output: names the path and the cause."""
    path = err.filename or "?"
    if err.errno == errno.ENOSPC or err.errno == errno.EDQUOT:
        why = "the disk is full"
    elif err.errno == errno.EFBIG:
        why = "the file size limit was reached"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "permission denied" if err.errno != errno.EROFS else "read-only file system"
    elif err.errno == errno.ENOTDIR:
        why = "a parent of it is a file, not a folder"
    elif err.errno == errno.EISDIR:
        why = "it is a folder"
    else:
        why = err.strerror or str(err)
    return f"cannot {action} {path}: {why}"


def _tmp_name(path, tag="tmp"):
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(folder, f".{name}.{tag}-{os.getpid()}-{time.monotonic_ns() % 10**9}")


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_target(path):
    """Refuse an output path that is a folder or a symlink (replacing it would write elsewhere or
    destroy a folder), naming it."""
    if os.path.islink(path):
        raise OutputError(errno.EEXIST, "the output path is a symbolic link; give a real path", path)
    if os.path.isdir(path):
        raise OutputError(errno.EISDIR, "the output path is a folder, not a file", path)


@contextlib.contextmanager
def atomic_file(path, mode="wb"):
    """Open a temporary file beside ``path`` for writing; on a clean exit it is flushed, synced and
    renamed onto ``path``; on an exception it is removed and ``path`` is left as it was.

    ``OSError`` while writing (full disk, size limit, permissions) is raised as
    :class:`OutputError` naming ``path``."""
    path = os.fspath(path)
    _check_target(path)
    tmp = _tmp_name(path)
    try:
        handle = open(tmp, mode)
    except OSError as err:
        err.filename = err.filename or path
        raise OutputError(err.errno, describe_os_error(err), path) from err
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, TfFaceError):
            err.filename = path
            raise OutputError(err.errno, describe_os_error(err), path) from err
        raise
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def atomic_write(path, data):
    """Write ``data`` (bytes or str) to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def json_safe(value):
    """``value`` with every non-finite float replaced by ``None`` and numpy scalars/arrays turned
    into Python values, so that it serialises as strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar or array
        return json_safe(value.tolist())
    if hasattr(value, "item") and callable(value.item):
        return json_safe(value.item())
    return value


def dumps_json(value, indent=2):
    """Strict JSON text of ``value`` (non-finite floats written as ``null``)."""
    return json.dumps(json_safe(value), indent=indent, allow_nan=False) + "\n"


def write_json(path, value, indent=2):
    """Write ``value`` as strict JSON to ``path`` atomically."""
    atomic_write(path, dumps_json(value, indent=indent))


def read_json(path, what="JSON file"):
    """Read a JSON file, turning a missing, unreadable or malformed file into an
    :class:`InputError` that names it."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except OSError as err:
        raise InputError(f"cannot read {what} {path}: {err.strerror or err}") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise InputError(f"{what} {path} is not valid JSON ({type(err).__name__}: "
                         f"{str(err)[:200]}); it may be truncated or edited by hand") from None


@contextlib.contextmanager
def staged_dir(path, overwrite=False):
    """Build a folder under a hidden staging name beside ``path`` and move it into place.

    Yields the staging folder. On a clean exit: if ``path`` exists (only allowed with
    ``overwrite``) it is renamed aside, the staging folder renamed onto ``path``, and the old one
    removed; an interruption between the two renames leaves the old folder under
    ``.NAME.old-*`` beside it (never nothing). On an exception the staging folder is removed and
    ``path`` is untouched. Without ``overwrite`` an existing non-empty ``path`` is refused before
    anything is written."""
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    if os.path.islink(path):
        raise OutputError(errno.EEXIST, f"the output path {path} is a symbolic link; give a real path", path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(errno.ENOTDIR, f"the output path {path} is a file, not a folder", path)
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise OutputError(errno.EEXIST, f"{path} exists and is not empty (pass --overwrite to replace it)", path)
    try:
        os.makedirs(parent, exist_ok=True)
        stage = _tmp_name(path, "partial")
        os.mkdir(stage)
    except OSError as err:
        err.filename = err.filename or path
        raise OutputError(err.errno, describe_os_error(err), path) from err
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = None
    try:
        if os.path.isdir(path):
            old = _tmp_name(path, "old")
            os.replace(path, old)
        os.replace(stage, path)
    except OSError as err:
        if old is not None and not os.path.exists(path):
            with contextlib.suppress(OSError):
                os.replace(old, path)
        shutil.rmtree(stage, ignore_errors=True)
        err.filename = err.filename or path
        raise OutputError(err.errno, describe_os_error(err), path) from err
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(parent)


def remove(path):
    """Delete ``path`` whatever it is (a folder tree, a file, a link: the link, not what it
    points to), ignoring errors. Returns False when a file or link could not be unlinked."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
        return True
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def leftovers(folder):
    """Hidden staging/temporary names that an interrupted writer left in ``folder``."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(".") and any(
        f".{tag}-" in n for tag in ("tmp", "partial", "old")))


class DirLock:
    """An exclusive, non-blocking lock on a folder, held while the ``with`` block runs.

    ``DirLock(folder, "tfface train")``: creates ``folder`` if needed, opens
    ``folder/.tfface.lock`` and takes ``fcntl.flock(LOCK_EX | LOCK_NB)``. If another process holds
    it, raises :class:`LockedError` naming the holder (pid, host, command, start time, as the
    holder wrote them into the file). The kernel releases the lock when the holder exits or is
    killed, so a lock file left by a dead process is taken over. ``lock_path`` locks a given file
    instead (for an output folder that is replaced as a whole, lock a file beside it)."""

    def __init__(self, folder, purpose, lock_path=None):
        self.folder = os.fspath(folder)
        self.purpose = purpose
        self.lock_path = os.fspath(lock_path) if lock_path else os.path.join(self.folder, LOCK_NAME)
        self._fd = None

    @classmethod
    def beside(cls, path, purpose):
        """A lock for an output path that is replaced as a whole: ``.NAME.lock`` in its parent."""
        path = os.path.abspath(os.fspath(path))
        folder, name = os.path.split(path)
        return cls(folder, purpose, lock_path=os.path.join(folder, f".{name}.lock"))

    def acquire(self):
        import fcntl

        try:
            os.makedirs(os.path.dirname(self.lock_path) or ".", exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            err.filename = err.filename or self.lock_path
            raise OutputError(err.errno, describe_os_error(err, "create the lock file"),
                              self.lock_path) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise LockedError(
                    f"{self.folder} is in use by another process ({holder or 'holder unknown'}); "
                    f"wait for it to finish or stop it") from None
            raise
        info = (f"pid {os.getpid()} on {socket.gethostname()}, {self.purpose}, since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode("utf-8"), 0)
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            import fcntl

            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def report(command, err, stream=None):
    """Print ``tfface COMMAND: message`` for an expected failure and return its exit status.

    :class:`TfFaceError` carries its own status; an ``OSError`` about an output maps to
    :data:`EXIT_OUTPUT` with the path and cause."""
    stream = stream or sys.stderr
    if isinstance(err, TfFaceError):
        code, text = err.exit_code, (err.args[-1] if isinstance(err, OSError) and len(err.args) > 1
                                     else str(err))
        if isinstance(err, OSError) and err.filename and str(err.filename) not in str(text):
            text = f"{text}: {err.filename}"
    elif isinstance(err, OSError):
        code, text = EXIT_OUTPUT, describe_os_error(err)
    else:
        code, text = EXIT_INPUT, str(err)
    print(f"tfface {command}: {text}", file=stream)
    return code
