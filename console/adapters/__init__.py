"""Between the console and the playbooks, without Textual: what the TUI asks of runs, triage and incidents.

    run_adapter.py     ``RunLauncher``: every run, start or resume, through the node's runner
    run_state.py       what the console knows of the current run, folded from the runner's events
    run_view.py        how a run's steps and status are worded; run_hints.py: what to do next
    triage_view.py     what the Triage screen needs from a decision tree; triage_adapter.py: the playbooks' tree
    incident.py        ``IncidentDesk``: the incident store's work off the UI thread
    drill_sandbox.py   a drill's sandbox for a human responder

Nothing here imports Textual or console.tui (import-linter keeps it so): the screens render these.
"""
