"""Execution engine for `untangle verify`: run code instead of reading it.

- :mod:`untangle.engine.machine` runs a generated state machine on moto's in-process Step
  Functions interpreter, with every Lambda task served by a Python handler.
- :mod:`untangle.engine.original` runs the original orchestrating handler in-process, with every
  Lambda invoke it makes served by the callee handlers.
- :mod:`untangle.engine.guard` limits the process that runs them for `untangle verify`: no
  network, a memory cap, and a record of what was refused.

Both execute user code on purpose (verify is something the user asks for explicitly), so nothing
on the `untangle scan` / `untangle plan` path imports this package. Neither needs AWS: every call
stays in the process, under fake credentials.
"""
