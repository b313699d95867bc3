"""What the responder knows and does: probes, the decision tree, the playbook library, the runner.

    from playbooks.triage import triage                 # the decision tree walked with live evidence
    from playbooks.runner import Runner, RunOptions     # playbooks run against a data dir
    result = Runner(listeners=[render]).run("data-recovery", data_dir, RunOptions(assume_yes=True))

Modules: ``models`` and ``tree`` (the data models), ``loader`` (TOML files with file/line/field
errors; ``library/`` holds the files), ``actions/`` (the action registry and its gate: read-only
refusal and the audit log), ``probes/`` (answers with evidence), ``triage``, ``plan`` (includes and
parameters), ``runner``, ``accounting`` (a run's final account of lost data), ``events``, ``journal``,
``audit``, ``incidents`` (the one incident model: ``incident_model``, ``incident_store``,
``incident_triage``, ``incident_alerts``, ``incident_verify``, ``incident_report``), ``severity``,
``notify``, ``evidence`` (local facts about a data dir), ``state`` (where runs, audit and incidents live).
The fleet snapshot and its sources are the ``fleet`` package, the layer below this one: the probes
read it, and the console renders it.

Nothing here imports Textual or the console; importing this package imports nothing else.
"""

__all__: list[str] = []
