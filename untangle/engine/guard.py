"""Guards of the process that runs the app's code for `untangle verify` (the child of
:func:`untangle.verify.verify_in_subprocess`).

- :func:`block_network` refuses every connection, datagram and name lookup from then on, through
  an audit hook (``sys.addaudithook``): the hook sees the C-level ``_socket`` calls too, so a
  handler cannot get around it with ``_socket.socket`` or ``socket.create_connection``, and it
  cannot be removed. moto answers every AWS call in the process (``mock_aws`` stubs botocore
  before it opens a connection), so nothing verify needs opens a socket; the attempts are
  recorded (:func:`network_attempts`) so that the event is reported, even when the handler
  catches the error.
- :func:`limit_memory` sets ``RLIMIT_AS``: an allocation over the limit raises ``MemoryError``
  in the handler (recorded by :func:`note_memory_error`, see :func:`memory_errors`), or the
  interpreter aborts, which the parent reports as a crash.

These guard a verification, they do not sandbox hostile code: a handler that starts another
program (``subprocess``, ``os.system``) or calls libc through ``ctypes`` is not stopped here.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

_NETWORK_EVENTS = {
    "socket.connect": "connect to",
    "socket.sendto": "send a datagram to",
    "socket.sendmsg": "send a message to",
    "socket.getaddrinfo": "look up",
    "socket.gethostbyname": "look up",
    "socket.gethostbyaddr": "look up",
    "socket.getnameinfo": "look up",
}

_LOCK = threading.Lock()
_ATTEMPTS: list[str] = []
_MEMORY_ERRORS = [0]
_INSTALLED = [False]


class NetworkBlocked(PermissionError):
    """What a handler's connection or lookup raises under :func:`block_network`."""


def _address(event: str, args: tuple[Any, ...]) -> str:
    if event == "socket.getaddrinfo":
        host, port = args[0], args[1]
        return f"{host}:{port}" if port not in (None, 0) else str(host)
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple) and len(address) >= 2:
            return f"{address[0]}:{address[1]}"
        return str(address)
    return str(args[0]) if args else "?"


def _audit(event: str, args: tuple[Any, ...]) -> None:
    action = _NETWORK_EVENTS.get(event)
    if action is None:
        return
    if event == "socket.sendmsg" and (len(args) < 2 or args[1] is None):
        return  # on a connected socket: its connect was refused already
    attempt = f"{action} {_address(event, args)}"
    with _LOCK:
        _ATTEMPTS.append(attempt)
    raise NetworkBlocked(f"untangle verify blocks network access: {attempt}")


def block_network() -> None:
    """From now on, every connection, datagram and name lookup of this process raises
    :class:`NetworkBlocked` (once installed, for good: audit hooks cannot be removed)."""
    if not _INSTALLED[0]:
        sys.addaudithook(_audit)
        _INSTALLED[0] = True


def network_attempts() -> list[str]:
    """What was refused so far, in order (``"connect to 127.0.0.1:8080"``)."""
    with _LOCK:
        return list(_ATTEMPTS)


def limit_memory(limit_bytes: int) -> None:
    """Cap this process's address space (0: no limit)."""
    import resource  # POSIX only: imported where it is used

    if limit_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def note_memory_error(exc: BaseException) -> None:
    """Called where a handler's exception is caught: a ``MemoryError`` means the run hit the
    memory limit, whatever the handler or the machine made of it afterwards."""
    if isinstance(exc, MemoryError):
        with _LOCK:
            _MEMORY_ERRORS[0] += 1


def memory_errors() -> int:
    """How many ``MemoryError`` handlers raised so far."""
    with _LOCK:
        return _MEMORY_ERRORS[0]
