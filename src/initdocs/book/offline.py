"""The kernels' network guard: Python code that reaches for another host fails with a clear error.

The book promises that a build never downloads anything. A chapter that calls a downloader
(``torchvision.datasets.MNIST(download=True)``, ``urllib``, ``requests``...) would otherwise hang
until a time-out on a machine without network, or silently depend on the network on one with.
The kernels that execute the chapters call :func:`forbid_network` at start-up (see
:mod:`initdocs.book.kernels`).

What it catches: in the kernel's own process, ``socket.socket.connect``, ``connect_ex`` and
``socket.getaddrinfo`` for anything but this machine, which covers every Python library that
opens TCP connections or connected UDP sockets through the ``socket`` module (urllib,
requests, http.client, ``torch.hub``, scikit-learn's fetchers). They raise
:class:`NetworkAccessError` naming the host, and the build stops with the chapter's traceback.

What it does not catch, because it patches Python functions and does not isolate the process:
shell commands and subprocesses (``!pip install``, ``!wget``, ``subprocess.run(["curl", ...])``),
datagrams sent with ``sendto`` on an unconnected socket, the raw ``_socket`` module, C and C++
libraries that open their own sockets or resolve names themselves, and worker processes
started with ``spawn`` (forked workers inherit the guard). It is a guard against accidents,
not a sandbox; the machines that build the book in CI have no network besides package
registries, and review of a chapter's code catches the rest.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

__all__ = ["NetworkAccessError", "forbid_network", "is_local"]

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", ""})


class NetworkAccessError(ConnectionRefusedError):
    """Raised when code executed by the book tries to reach another host."""

    def __init__(self, target: str) -> None:
        super().__init__(
            f"initdocs: chapters run offline, but this code tried to reach {target}. "
            "Generate the data in the chapter, or use data that ships inside a package "
            "(e.g. sklearn.datasets.load_digits); never download data or weights."
        )


def is_local(host: Any) -> bool:
    """True for names and addresses of this machine (loopback), False for anything else."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _refuse_remote(sock: socket.socket, address: Any) -> None:
    """Raise :class:`NetworkAccessError` if ``sock`` would connect to another host."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # Unix sockets and the like stay on this machine
    host = address[0] if isinstance(address, tuple) and address else address
    if not is_local(host):
        target = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        raise NetworkAccessError(target)


def forbid_network() -> None:
    """Refuse connections and name lookups to other hosts in this process (idempotent)."""
    if getattr(socket.socket.connect, "_initdocs_guard", False):
        return
    connect, connect_ex, getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def guarded_connect(self: socket.socket, address: Any) -> None:
        _refuse_remote(self, address)
        return connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        _refuse_remote(self, address)
        return connect_ex(self, address)

    def guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_local(host):
            raise NetworkAccessError(f"{host}:{port}")
        return getaddrinfo(host, port, *args, **kwargs)

    guarded_connect._initdocs_guard = True  # type: ignore[attr-defined]
    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo  # type: ignore[assignment]
