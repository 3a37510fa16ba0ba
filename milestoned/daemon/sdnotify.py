"""The sd_notify protocol, spoken directly: one datagram to ``$NOTIFY_SOCKET``.

Under systemd (``Type=notify``) the daemon says READY=1 once it answers on its
socket, WATCHDOG=1 while its work loop is alive (so a wedged daemon gets restarted),
and STOPPING=1 on its way out.  The protocol is a few lines, so we speak it
ourselves rather than take a dependency; outside systemd every call is a no-op.
"""

from __future__ import annotations

import os
import socket


def _address() -> str | None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return None
    if address.startswith("@"):  # an abstract socket: a leading NUL byte on the wire
        return "\0" + address[1:]
    return address


def notify(*states: str) -> bool:
    """Send ``states`` (``"READY=1"``, ``"STATUS=..."``) to the service manager; True if sent."""
    address = _address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(states).encode("utf-8"), address)
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half what systemd allows), or None when not watched."""
    usec = os.environ.get("WATCHDOG_USEC")
    owner = os.environ.get("WATCHDOG_PID")
    if not usec or (owner and owner != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None


