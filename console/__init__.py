"""The console: what a responder types and sees. Three rooms, and the ground they share.

    cli/        the ``drconsole`` command line: parser, dispatch, one module per command, and the
                servers of ``drconsole serve``
    tui/        the Textual console: the app, its screens, widgets, styles, themes, demo and drill mode
    adapters/   the console's side of the playbooks, without Textual: runs, triage, incidents, drill
                sandboxes, and the views the screens draw of them
    config.py, config_lookup.py   drconsole.toml, and which file is used
    format.py, output.py          how figures read; how a command answers (exit codes, --json, the error line)

Imports point one way (pyproject's import-linter contracts): cli -> tui -> adapters. The CLI
opens the console only by importing it lazily in the handler that launches it, so a headless command
never loads Textual; adapters import neither Textual nor the TUI.
"""
