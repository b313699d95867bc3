"""The ``drconsole`` command line: ``main`` (main.py) parses, dispatches and renders every error.

Each command module registers its parser and handler with ``register(subparsers, common)``; main.py
lists them in ``_REGISTERED_BY`` and imports only the one a run needs. ``servers/`` holds the SSH and
web servers of ``drconsole serve``. Nothing here imports Textual at load time: the handlers that open
the console (console.py, drill.py) import console.tui when they run.
"""
