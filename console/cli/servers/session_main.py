"""``python -m console.cli.servers.session_main ARGS...``: ``drconsole ARGS`` as the session leader of its terminal.

``pty_console`` starts this with the pseudo-terminal's slave as stdin, stdout and stderr in a new
session; taking the terminal as the session's controlling terminal makes the kernel deliver
SIGWINCH on a resize and SIGHUP when the server side closes, even if the server itself was killed:
a console never outlives its connection.
"""

from __future__ import annotations

import fcntl
import sys
import termios

from console.cli.main import main


def take_terminal() -> None:
    try:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    except OSError:  # not a session leader or not a terminal: the console still runs, the server signals it
        pass


if __name__ == "__main__":
    take_terminal()
    sys.exit(main(sys.argv[1:]))
