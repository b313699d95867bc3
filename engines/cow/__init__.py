"""The copy-on-write B+ tree backend (``data.cow``).

Modules, bottom up: ``page`` (page header, checksums), ``node`` (leaf, branch and overflow
encodings), ``meta`` (the two meta pages), ``freelist`` (free pages and when they may be reused),
``pagefile`` (checked page I/O), ``cache`` (decoded pages), ``tree`` (lookups, scans, the write
buffer), ``commit`` (copy on write to new pages, then the meta), ``build`` (whole files from sorted
records), ``store`` (opening a file), ``verify`` (the checker), ``snapshots``, ``repair``,
``config`` (backend options) and ``engine`` (``CowEngine``, the engine contract).
"""
