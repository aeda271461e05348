"""Writing a kubeconfig that points the unmodified clients at a kubesim server."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

CONTEXT = "kubesim"


def kubeconfig_dict(url: str, *, namespace: str = "default", token: str | None = None,
                    ca_file: str | None = None) -> dict[str, object]:
    cluster: dict[str, object] = {"server": url}
    if ca_file:
        cluster["certificate-authority"] = str(ca_file)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": CONTEXT, "user": {"token": token or "kubesim"}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}],
        "current-context": CONTEXT,
    }


def write_kubeconfig(path: str | os.PathLike[str], url: str, *, namespace: str = "default", token: str | None = None,
                     ca_file: str | None = None) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=target.parent)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(kubeconfig_dict(url, namespace=namespace, token=token, ca_file=ca_file), handle, sort_keys=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
    return target
