"""Packages whose import is put off until something uses them.

moto's Step Functions interpreter imports its Batch task for one enum (``moto.batch.utils``), and
with it the package ``moto.batch``, whose ``__init__`` imports moto's Batch backend, which
imports the whole EC2 backend: about 0.9 s of CPU, more than half of what verify's child spends
importing, for services no migrated machine calls. :func:`defer_package` puts such a package in
``sys.modules`` without running its ``__init__``: its submodules import as usual (its
``__path__`` is set), and the first attribute asked of the package itself runs the ``__init__``
then, so ``moto.batch.batch_backends`` (moto looking up the backend when the app calls Batch
under ``mock_aws``) is the real one.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

# moto packages the interpreter imports only for a submodule (checked by tests/test_engine.py)
DEFERRED_MOTO_PACKAGES = ("moto.batch",)

_LOCK = threading.RLock()


def defer_package(name: str) -> ModuleType | None:
    """``name`` registered in ``sys.modules`` with its ``__init__`` not run yet (the module);
    None, leaving it alone, when it is imported already, is not installed or is not a
    package."""
    with _LOCK:
        if name in sys.modules:
            return None
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return None
        module = importlib.util.module_from_spec(spec)
        loader = spec.loader

        def run_init(attribute: str) -> Any:
            if attribute.startswith("__"):  # __all__, __wrapped__ …: what a lazy module lacks
                raise AttributeError(attribute)
            with _LOCK:
                if module.__dict__.get("__getattr__") is run_init:
                    del module.__dict__["__getattr__"]
                    try:
                        loader.exec_module(module)
                    except BaseException:
                        sys.modules.pop(name, None)  # as a failed import leaves it
                        raise
            return getattr(module, attribute)

        module.__dict__["__getattr__"] = run_init
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, module)
        return module
