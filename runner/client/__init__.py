"""What a person's machine runs to talk to c2d: the HTTP client, uploads, verified downloads,
and the session a notebook user starts with.

```python
from runner.client import connect   # reads what `c2d login` saved (or C2D_URL, C2D_TOKEN)
c = connect()
job = c.submit("jobs/diabetes", dataset="patients", params={"max_depth": 8})
job.wait()
result = job.fetch("out")           # every digest and the receipt verified
```

``connect`` gives a ``Session`` (``runner.client.session``) whose jobs and datasets are
handles over the pydantic models of ``jobs.views``; ``Client`` is the layer beneath, one
method per API route. ``runner.client.verify`` holds the checks that make a fetched result
trustworthy, ``runner.client.submission`` those that make a submission what was packed, so a
Python caller gets them as the CLI does. Nothing here imports the control plane or the data
host. Names load on first use: the CLI imports ``runner.client.api`` and pays for nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.client.api import Client
    from runner.client.session import JobHandle, Session, connect

_WHERE = {
    "Client": "runner.client.api",
    "JobHandle": "runner.client.session",
    "Session": "runner.client.session",
    "connect": "runner.client.session",
}

__all__ = [
    "Client",
    "JobHandle",
    "Session",
    "connect",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'runner.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value
