"""podq.kubesim: a Kubernetes API stand-in (Pods, namespaces, discovery) with a simulated kubelet and fault injection.

It imports nothing from the rest of podq. Entry points: ``cli.main`` (the server process), ``KubeSim`` /
``start_in_thread`` (in-process), ``admin.Admin`` (the admin client), ``process.spawn`` (a child process).
Names are imported lazily so ``podq.kubesim.admin`` stays cheap to import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KubeSim", "KubeSimServer", "KubeletDelays", "SimSettings", "start_in_thread"]


def __getattr__(name: str) -> Any:
    if name in ("KubeSim", "KubeSimServer", "start_in_thread"):
        from . import server

        return getattr(server, name)
    if name in ("KubeletDelays", "SimSettings"):
        from . import settings

        return getattr(settings, name)
    raise AttributeError(name)
