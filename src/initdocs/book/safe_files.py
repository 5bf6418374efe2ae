"""Writing the book's files so that a crash, a full disk or a second command never leaves a
half-written or lost file.

* :class:`StagedFile` writes the new content to a fresh temporary file beside the target
  (created with exclusive creation under a random name, so never through a planted symlink),
  flushes it to disk, then :meth:`~StagedFile.commit` renames it into place in one step.
  A symlinked target is followed: its target file is replaced, the link stays a link.
* :func:`exclusive_lock` serialises the commands that write the same files. The kernel
  releases the lock when its process dies, even by ``kill -9``, so a lock is never stale.
* :func:`remove_leftovers` deletes the temporary files a killed command left behind.
* :func:`crash_point` is a test hook and does nothing unless a test asks for a crash.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = [
    "LockTimeout",
    "StagedFile",
    "atomic_write",
    "crash_point",
    "exclusive_lock",
    "remove_leftovers",
]

_TEMP_SUFFIX = ".tmp"


def crash_point(name: str) -> None:
    """Test hook: kill this process at the point ``name`` if ``INITDOCS_TEST_CRASH_AT`` says so.

    The crash-safety tests set ``INITDOCS_TEST_CRASH_AT=after-record`` (say) to stop a command
    exactly there, as ``kill -9`` would, and then check that rerunning the command succeeds.
    Outside those tests the variable is unset and this returns at once.
    """
    if os.environ.get("INITDOCS_TEST_CRASH_AT") == name:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _new_file_mode() -> int:
    """The permission bits a plain ``open(path, "w")`` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable, where the system allows opening a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows, or a folder we may enter but not read
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself has happened
    finally:
        os.close(fd)


class StagedFile:
    """New content for ``path``, on disk in a temporary file until :meth:`commit`.

    Creating it writes and flushes the temporary file, so a full disk or a read-only folder
    shows up here, before any file the user sees has changed. Use it as a context manager:
    leaving the block without committing removes the temporary file.

    With ``exclusive``, :meth:`commit` creates ``path`` and never replaces anything there, not
    even a symlink; without it, a symlinked ``path`` is followed and its target replaced.
    ``label`` names the test hook's crash point once the temporary file is written.
    """

    def __init__(
        self, path: Path, content: str | bytes, *, exclusive: bool = False, label: str = "file"
    ) -> None:
        path = Path(path)
        #: the name the content gets; its folder resolved, and unless exclusive, it too
        self.target = (
            Path(os.path.realpath(path.parent)) / path.name
            if exclusive
            else Path(os.path.realpath(path))
        )
        self.exclusive = exclusive
        self.temporary: Path | None = None
        data = content.encode("utf-8") if isinstance(content, str) else content
        try:
            mode = os.stat(self.target).st_mode & 0o7777
        except FileNotFoundError:
            mode = _new_file_mode()
        try:
            fd, name = tempfile.mkstemp(
                dir=self.target.parent, prefix=f".{self.target.name}.", suffix=_TEMP_SUFFIX
            )
        except OSError as exc:
            raise _about(exc, self.target) from None
        self.temporary = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(self.temporary, mode)
        except BaseException as exc:
            self.discard()
            if isinstance(exc, OSError):
                raise _about(exc, self.target) from None
            raise
        crash_point(f"after-{label}-temp")

    def commit(self) -> None:
        """Put the content in place in one step.

        Raises:
            FileExistsError: if exclusive and something already has the target's name.
            OSError: anything else the system refused; the target is then unchanged.
        """
        if self.temporary is None:
            raise ValueError("commit() of a StagedFile that was discarded or committed")
        try:
            if self.exclusive:
                self._link()
            else:
                os.replace(self.temporary, self.target)
        except BaseException as exc:
            self.discard()
            if isinstance(exc, OSError):
                raise _about(exc, self.target) from None
            raise
        self.temporary = None
        _fsync_folder(self.target.parent)

    def _link(self) -> None:
        """Give the temporary file the target's name unless that name is taken."""
        assert self.temporary is not None
        try:
            os.link(self.temporary, self.target)  # fails if the name exists, even as a symlink
        except FileExistsError:
            raise
        except (OSError, NotImplementedError) as exc:
            # A file system without hard links: the caller's lock keeps others out meanwhile.
            if isinstance(exc, OSError) and exc.errno not in (
                errno.EPERM,
                errno.ENOTSUP,
                errno.EOPNOTSUPP,
            ):
                raise
            if os.path.lexists(self.target):
                raise FileExistsError(errno.EEXIST, "File exists", str(self.target)) from None
            os.replace(self.temporary, self.target)
            return
        with suppress(OSError):  # the content is in place; a leftover goes next time
            os.unlink(self.temporary)

    def discard(self) -> None:
        """Remove the temporary file, if it is still there."""
        if self.temporary is not None:
            with suppress(FileNotFoundError):
                os.unlink(self.temporary)
            self.temporary = None

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()


def atomic_write(path: Path, content: str | bytes, *, exclusive: bool = False) -> None:
    """Replace (or with ``exclusive``, create) ``path`` with ``content`` in one step."""
    with StagedFile(path, content, exclusive=exclusive) as staged:
        staged.commit()


def _about(exc: OSError, path: Path) -> OSError:
    """``exc`` naming ``path``, the file the user knows, instead of a temporary file."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def remove_leftovers(folder: Path, names: str) -> list[Path]:
    """Delete the temporary files that killed writes left in ``folder``; return them.

    ``names`` is a regular expression of the target names whose temporary files go, e.g.
    ``re.escape("sessions.toml")``. Call it only while holding the lock that every writer of
    these files holds, or it could delete another command's temporary file before its commit.
    """
    leftover = re.compile(rf"\.(?:{names})\.[a-z0-9_]+{re.escape(_TEMP_SUFFIX)}")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in entries:
        if leftover.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed.append(Path(entry.path))
    return removed


class LockTimeout(Exception):
    """Another process held the lock for longer than the timeout."""


if os.name == "nt":  # pragma: no cover - the tests run on Linux
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def _is_still_named(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (its last holder may have removed
    it after we opened it, and a lock on a removed file keeps no one out)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
    except FileNotFoundError:
        return False


@contextmanager
def exclusive_lock(path: Path, timeout: float = 10.0) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` for the block; wait at most ``timeout`` s.

    The file exists only while the lock is held (and after a ``kill -9``, until the next
    command takes and releases the lock). It is opened without following a symlink.

    Raises:
        LockTimeout: if another process held the lock for all of ``timeout`` seconds.
        OSError: if the lock file cannot be created, e.g. in a read-only folder.
    """
    deadline = time.monotonic() + timeout
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    while True:
        fd = os.open(path, flags, 0o644)
        try:
            if _try_lock(fd) and _is_still_named(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # also drops a lock we got on a file its holder had just removed
        if time.monotonic() >= deadline:
            raise LockTimeout(str(path))
        time.sleep(0.05)
    try:
        yield
    finally:
        if os.name == "nt":  # pragma: no cover - Windows cannot remove an open file
            os.close(fd)
            with suppress(OSError):  # another process opened it meanwhile, and removes it
                os.unlink(path)
        else:
            with suppress(FileNotFoundError):
                os.unlink(path)  # while still locked, so a waiter sees it is gone
            os.close(fd)
