"""CRC-32C (Castagnoli), the checksum of the WAL, the tables, the pages and the replication wire.

The ``crc32c`` package's ``__init__`` looks its own version up through ``importlib.metadata``,
which costs more than everything else a short CLI command imports (~30 ms of CPU per process).
The function lives in its C extension, so that is loaded directly; the package import remains
the fallback when its layout differs.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from collections.abc import Callable
from typing import Any

__all__ = ["crc32c"]


def _load() -> Callable[..., int]:
    try:
        spec = importlib.util.find_spec("crc32c")  # finds the package without running its __init__
        folders = list(spec.submodule_search_locations or []) if spec is not None else []
        for folder in folders:
            for name in sorted(os.listdir(folder)):
                if name.startswith("_crc32c.") and name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
                    loader = importlib.machinery.ExtensionFileLoader("crc32c._crc32c", os.path.join(folder, name))
                    extension = importlib.util.spec_from_file_location("crc32c._crc32c", loader.path, loader=loader)
                    assert extension is not None
                    module: Any = importlib.util.module_from_spec(extension)
                    loader.exec_module(module)
                    function: Callable[..., int] = module.crc32c
                    return function
    except (ImportError, OSError, AttributeError, AssertionError):
        pass
    import crc32c as package

    fallback: Callable[..., int] = package.crc32c
    return fallback


crc32c = _load()
