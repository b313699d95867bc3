"""The app's end when the terminal goes away: SIGHUP, SIGTERM or a lost TTY.

A mixin of ``DrConsoleApp`` (console.tui.app). A running playbook keeps its journal (the runner writes
it as it goes), so leaving at once loses nothing; what must not happen is a console that lingers
without a terminal, holding data dirs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from typing import Any

from textual.app import App

__all__ = ["TerminalWatch"]


class TerminalWatch(App[int]):
    exit_reason: str
    hard_exit_seconds: float | None
    _signals: list[tuple[signal.Signals, Any]]

    def _install_signal_handlers(self) -> None:
        """SIGHUP and SIGTERM end the app.

        Python-level handlers, not the event loop's: on a hang-up the kernel sends SIGHUP and then
        SIGCONT, and Textual's SIGCONT handler restarts the terminal (a new writer thread on a dead
        tty, which then deadlocks the shutdown). Python runs pending handlers in signal-number
        order, so ours (SIGHUP = 1) runs first and disarms SIGCONT (18) before it is handled.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()

        def on_signal(number: int, _frame: object) -> None:
            signal.signal(signal.SIGCONT, signal.SIG_DFL)
            loop.call_soon_threadsafe(self.terminal_gone, signal.Signals(number).name)

        for number in (signal.SIGHUP, signal.SIGTERM):
            self._signals.append((number, signal.signal(number, on_signal)))

    def _remove_signal_handlers(self) -> None:
        for number, previous in self._signals:
            signal.signal(number, previous)
        self._signals.clear()

    def terminal_gone(self, why: str) -> None:
        """The terminal hung up (or we were told to stop): leave now; a playbook keeps its journal.

        Should the shutdown itself hang on the dead terminal, the process ends anyway after a grace
        period: a console whose terminal is gone must not linger holding data dirs.
        """
        if self.exit_reason:
            return
        self.exit_reason = why
        if self.hard_exit_seconds is not None:
            grace = self.hard_exit_seconds

            def hard_exit() -> None:
                time.sleep(grace)
                os._exit(0)

            threading.Thread(target=hard_exit, name="drconsole-hangup-exit", daemon=True).start()
        self.exit(return_code=0)

    def _check_terminal(self) -> None:
        import termios

        try:
            termios.tcgetattr(sys.__stdin__.fileno() if sys.__stdin__ else 0)
        except (termios.error, OSError, ValueError):
            self.terminal_gone("lost TTY")
