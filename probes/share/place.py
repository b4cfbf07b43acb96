"""Where an engine is shared: one Unix socket per context, in an owner-only directory.

The directory is ``$XDG_RUNTIME_DIR/aksnet-top`` (a per-user tmpfs on systemd hosts), else
``<state dir>/aksnet-top/run`` (``$XDG_STATE_HOME``, default ``~/.local/state``); it is
made 0700 and refused if another user owns it or it lets others in. The socket is named by
a hash of the context (`context_key`), is 0600, and the owner holds an exclusive `flock`
on ``<key>.lock`` for as long as it runs: a socket whose lock is free was left by an owner
that died, and the next run replaces it. The lock file is never removed (removing it
would let two runs lock two different files).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

SOCK_MAX = 100  # sun_path holds 108 bytes; leave room


class ShareError(Exception):
    """Sharing cannot be set up here; the message is for the user."""


def context_key(parts: Iterable[object]) -> str:
    """A short stable name for a context: kubeconfig path(s) + context + ARM endpoint
    (or, for the demo, scenario + nodes). Nothing of it is readable in the name."""
    text = json.dumps([str(p) for p in parts], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def runtime_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    run = env.get("XDG_RUNTIME_DIR")
    if run and os.path.isabs(run):
        return Path(run) / "aksnet-top"
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "aksnet-top" / "run"


def private_dir(path: Path) -> Path:
    """`path`, made if missing, 0700 and ours; ShareError if it cannot be trusted."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(path)
    except OSError as e:
        raise ShareError(f"cannot make {path}: {e.strerror or e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ShareError(f"{path} is not a directory")
    if st.st_uid != os.getuid():
        raise ShareError(f"{path} belongs to another user (uid {st.st_uid})")
    if st.st_mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as e:
            raise ShareError(f"{path} is open to other users and cannot be closed: {e.strerror or e}") from None
    return path


@dataclass(frozen=True)
class Place:
    """The socket and the owner's lock of one context."""

    dir: Path
    key: str

    @property
    def socket(self) -> Path:
        return self.dir / f"{self.key}.sock"

    @property
    def lock(self) -> Path:
        return self.dir / f"{self.key}.lock"


def place_for(key: str, env: Mapping[str, str] | None = None) -> Place:
    """The place of `key` in the user's runtime directory (made private here). A path too
    long for a Unix socket moves to /tmp/aksnet-top-<uid> (also 0700 and ours)."""
    d = runtime_dir(env)
    if len(str(d / f"{key}.sock")) > SOCK_MAX:
        d = Path("/tmp") / f"aksnet-top-{os.getuid()}"
    return Place(private_dir(d), key)


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int.from_bytes(creds[4:8], "little", signed=False)


def connect(place: Place, timeout: float = 2.0) -> socket.socket | None:
    """A connection to the owner of `place`, or None if nobody listens there. The owner
    must be this user (a socket someone else put there is refused)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(place.socket))
    except (FileNotFoundError, ConnectionRefusedError):
        s.close()
        return None
    except OSError as e:
        s.close()
        if e.errno in (errno.ENOENT, errno.ECONNREFUSED):
            return None
        raise ShareError(f"cannot reach the engine at {place.socket}: {e.strerror or e}") from None
    if peer_uid(s) != os.getuid():
        s.close()
        raise ShareError(f"{place.socket} is served by another user; not attaching")
    return s


class Ownership:
    """This run owns `place`: the lock is held and the socket listens (0600)."""

    def __init__(self, place: Place, lock_fd: int, listener: socket.socket) -> None:
        self.place = place
        self.lock_fd = lock_fd
        self.listener = listener
        self._ino = os.stat(place.socket).st_ino
        self.released = False

    def release(self) -> None:
        """Stop listening, remove the socket (if it is still ours), free the lock. Once."""
        if self.released:
            return
        self.released = True
        try:
            self.listener.close()
        except OSError:
            pass
        try:
            if os.stat(self.place.socket).st_ino == self._ino:
                os.unlink(self.place.socket)
        except OSError:
            pass
        try:
            os.close(self.lock_fd)  # the flock goes with the descriptor
        except OSError:
            pass


def lock_is_held(place: Place) -> bool:
    """Does a live owner hold `place`'s lock?"""
    try:
        fd = os.open(place.lock, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also unlocks, had we got it
    return False


def try_own(place: Place) -> Ownership | None:
    """Take `place` if no live owner holds it: lock, replace a stale socket, listen.
    None while another run owns it."""
    try:
        fd = os.open(place.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise ShareError(f"cannot open {place.lock}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    tmp = place.dir / f"{place.key}.{os.getpid()}.tmp"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        _unlink(tmp)
        s.bind(str(tmp))  # under a name of its own: nobody connects before it is 0600
        os.chmod(tmp, 0o600)
        s.listen(16)
        os.replace(tmp, place.socket)  # a stale socket (its owner died) is replaced here
    except OSError as e:
        s.close()
        _unlink(tmp)
        os.close(fd)
        raise ShareError(f"cannot listen on {place.socket}: {e.strerror or e}") from None
    return Ownership(place, fd, s)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def attach_or_own(place: Place, *, attach: bool = True, wait: float = 3.0) -> socket.socket | Ownership | None:
    """Attach to a live owner (a connected socket) or become the owner (`Ownership`).
    `attach=False` (``--no-attach``): never attach; own the place if it is free, else
    None (this run neither attaches nor shares). A live owner still starting (lock held,
    not listening yet) is waited for up to `wait` seconds."""
    end = time.monotonic() + wait
    while True:
        if attach:
            conn = connect(place)
            if conn is not None:
                return conn
        owned = try_own(place)
        if owned is not None or not attach:
            return owned
        if time.monotonic() >= end:
            raise ShareError(f"an aksnet-top owns {place.socket} but does not answer")
        time.sleep(0.1)


def attach_only(place: Place, wait: float = 3.0) -> socket.socket | None:
    """A connection to the live owner of `place`, or None if there is none (never owns)."""
    end = time.monotonic() + wait
    while True:
        conn = connect(place)
        if conn is not None:
            return conn
        if not lock_is_held(place):  # nobody, or a stale socket its dead owner left
            return None
        if time.monotonic() >= end:
            raise ShareError(f"an aksnet-top owns {place.socket} but does not answer")
        time.sleep(0.1)
