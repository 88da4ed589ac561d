"""The sandbox: runs one job's code beside private data, in a container it cannot leave.

``interface`` holds the contract (``SandboxSpec``, ``Limits``, ``RunResult``, ``Executor``);
``docker`` the real executor and ``fake`` a scripted one for unit tests. ``hardening`` is the
container configuration no spec can loosen, ``workdir`` the job's host folder and its
size-capped ``/outputs``, ``logs`` the capped log, ``metrics`` the rules of ``metrics.json``.
"""

from runner.host.sandbox.interface import (
    Executor,
    Limits,
    OutputFile,
    RunResult,
    SandboxSpec,
    State,
)

__all__ = ["Executor", "Limits", "OutputFile", "RunResult", "SandboxSpec", "State"]
