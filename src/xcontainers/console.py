"""Terminals for containers.

With ``process.terminal`` the container's init opens a pty pair in the
container's own devpts (after pivot_root, so the slave belongs to the
container), makes the slave its controlling terminal and stdio, and sends the
master over the *console socket* (an AF_UNIX socket, SCM_RIGHTS) to whoever
asked for the container: podman's conmon, or ``xc-runtime run`` itself,
which then copies bytes between the caller's terminal and the master.
"""

from __future__ import annotations

import _signal
import _socket
import fcntl
import os
import select
import struct
import sys
import termios

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

__all__ = ["send_fd", "recv_fd", "set_winsize", "make_controlling", "Proxy"]

_INT = 4  # sizeof(int): an fd in an SCM_RIGHTS message


def send_fd(sock: _socket.socket, fd: int, name: str) -> None:
    """Send *fd* with *name* as the data (socket.send_fds without the socket module)."""
    rights = fd.to_bytes(_INT, sys.byteorder, signed=True)
    sock.sendmsg([name.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])


def recv_fd(sock: _socket.socket) -> int:
    """Receive one fd sent by :func:`send_fd` (socket.recv_fds, likewise)."""
    _msg, ancdata, _flags, _addr = sock.recvmsg(4096, _socket.CMSG_LEN(_INT))
    fds = [
        int.from_bytes(data[i : i + _INT], sys.byteorder, signed=True)
        for level, kind, data in ancdata
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS
        for i in range(0, len(data) - len(data) % _INT, _INT)
    ]
    if not fds:
        raise OSError("console socket: no file descriptor received")
    return fds[0]


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def copy_winsize(src: int, dst: int) -> None:
    try:
        buf = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, buf)
    except OSError:
        pass


def make_controlling(slave: int) -> None:
    """Make *slave* the controlling terminal and stdio of this process."""
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)


class Proxy:
    """Copies between the caller's stdio and a pty master until the container exits."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.saved: list | None = None  # type: ignore[type-arg]

    def __enter__(self) -> "Proxy":
        if os.isatty(0):
            self.saved = termios.tcgetattr(0)
            mode = termios.tcgetattr(0)
            # cfmakeraw
            mode[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                         | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
            mode[1] &= ~termios.OPOST
            mode[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
            mode[2] &= ~(termios.CSIZE | termios.PARENB)
            mode[2] |= termios.CS8
            termios.tcsetattr(0, termios.TCSANOW, mode)
            copy_winsize(0, self.master)
            _signal.signal(_signal.SIGWINCH, lambda *_: copy_winsize(0, self.master))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)

    def pump(self, done: Callable[[], bool]) -> None:
        """Copy until the master reports EOF/EIO (all slave ends closed)."""
        stdin_open = True
        while True:
            fds = [self.master] + ([0] if stdin_open else [])
            try:
                r, _, _ = select.select(fds, [], [], 0.2)
            except InterruptedError:
                continue
            if not r and done():
                # Drain what is left without blocking.
                r = [self.master]
            if self.master in r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                if not data:
                    return
                os.write(1, data)
            if 0 in r:
                data = os.read(0, 65536)
                if not data:
                    stdin_open = False
                    try:
                        os.write(self.master, b"\x04")
                    except OSError:
                        pass
                else:
                    os.write(self.master, data)
