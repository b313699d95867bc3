"""Dependency warnings stay off a user's terminal; Python's own switches still show them.

A dependency's ``DeprecationWarning``-style notice (cryptography 51 warns about DSA each time
asyncssh imports its key types) tells a drconsole user nothing they can act on, and it lands in
the middle of ``serve ssh`` output and in scripts that read stderr. So every entry point installs
these filters first. They are narrow on purpose (this category, raised from these modules), and
they step aside when the user asked for warnings: ``python -W ...`` or ``PYTHONWARNINGS`` (both
populate ``sys.warnoptions``).
"""

from __future__ import annotations

import sys
import warnings

__all__ = ["quiet_dependency_warnings", "QUIETED"]

# (category module, category name, modules whose warnings of that category are hidden)
QUIETED: tuple[tuple[str, str, str], ...] = (
    ("cryptography.utils", "CryptographyDeprecationWarning", r"asyncssh(\..*)?$"),
)


def quiet_dependency_warnings() -> None:
    if sys.warnoptions:
        return
    for category_module, category_name, modules in QUIETED:
        try:
            # Import only the module that defines the category (cheap), not the warning's source.
            category = getattr(__import__(category_module, fromlist=[category_name]), category_name)
        except (ImportError, AttributeError):
            continue  # that dependency (or that warning) is gone: nothing to quiet
        warnings.filterwarnings("ignore", category=category, module=modules)
