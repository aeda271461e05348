"""The Pod verbs with the apiserver's rules (create, get, list, update, patch, delete, status), over the Store."""

from __future__ import annotations

import base64
import bisect
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from . import errors, patching, pods
from .clock import rfc3339
from .errors import ApiError
from .selectors import FieldSelector, LabelSelector
from .store import Entry, Store

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter."
)


@dataclass(slots=True)
class DeleteOptions:
    grace_period: int | None = None
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False
    propagation: str | None = None


def _continue_token(rv: int, after: tuple[str, str]) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{after[0]}/{after[1]}\x00"})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        ns, name = str(data["start"]).rstrip("\x00").split("/", 1)
        return int(data["rv"]), (ns, name)
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request(f"continue key is not valid: {token!r}") from None


class PodService:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reads ---------------------------------------------------------------------------------
    def require_namespace(self, namespace: str) -> None:
        if namespace not in self.store.namespaces:
            raise errors.not_found(namespace, resource="namespaces")

    def entry(self, namespace: str, name: str) -> Entry:
        entry = self.store.get(namespace, name)
        if entry is None:
            raise errors.not_found(name)
        return entry

    def list_body(
        self,
        namespace: str | None,
        *,
        labels: LabelSelector,
        fields: FieldSelector,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> bytes:
        """A serialized PodList (items sorted by namespace and name, as etcd's key order)."""
        store = self.store
        list_rv = store.rv
        after: tuple[str, str] | None = None
        if continue_token:
            list_rv, after = _parse_continue(continue_token)
            if not store.history.available_from(list_rv):
                raise errors.expired(_CONTINUE_EXPIRED)
        keys = store.sorted_keys(namespace)
        first = bisect.bisect_right(keys, after) if after is not None else 0
        items: list[bytes] = []
        last_key: tuple[str, str] | None = None
        remaining = -1
        unfiltered = not labels.requirements and not fields.terms
        for index in range(first, len(keys)):
            key = keys[index]
            entry = store.pods[key]
            obj = entry.obj
            if not unfiltered and not (labels.matches(obj["metadata"].get("labels")) and fields.matches(obj)):
                continue
            if limit and len(items) >= limit:
                remaining = len(keys) - index
                break
            items.append(entry.item_bytes())
            last_key = key
        meta: JsonDict = {"resourceVersion": str(list_rv)}
        if remaining > 0 and last_key is not None:
            meta["continue"] = _continue_token(list_rv, last_key)
            if unfiltered:
                meta["remainingItemCount"] = remaining
        return (
            b'{"kind":"PodList","apiVersion":"v1","metadata":'
            + orjson.dumps(meta)
            + b',"items":['
            + b",".join(items)
            + b"]}"
        )

    # -- create --------------------------------------------------------------------------------
    def create(self, namespace: str, body: Any, *, dry_run: bool = False) -> Entry | JsonDict:
        body = pods.require_object(body)
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        generated = not meta.get("name") and bool(meta.get("generateName"))
        if generated:
            meta["name"] = pods.generate_name(str(meta["generateName"]))
        pods.validate_create(body, url_namespace=namespace)
        self.require_namespace(namespace)
        for _attempt in range(8 if generated else 1):
            if self.store.get(namespace, meta["name"]) is None:
                break
            if generated:
                meta["name"] = pods.generate_name(str(meta["generateName"]))
        else:
            raise errors.already_exists(meta["name"])
        obj = pods.prepare_create(body, namespace=namespace, rv=self.store.rv + 1, now=time.time())
        if dry_run:
            return obj
        entry = self.store.insert(obj)
        log.debug("created pod %s/%s uid=%s rv=%s", namespace, meta["name"], meta["uid"], self.store.rv)
        return entry

    # -- update and patch ---------------------------------------------------------------------
    def _prepare_update(self, old: Entry, new: JsonDict, *, subresource: str | None) -> JsonDict:
        """Apply the strategy: server-owned metadata kept; main resource keeps status, /status keeps the rest."""
        old_obj = old.obj
        name = old_obj["metadata"]["name"]
        new_meta = new.get("metadata")
        if not isinstance(new_meta, dict):
            new_meta = {}
        if subresource == "status":
            result = old.clone()
            status = new.get("status")
            result["status"] = status if isinstance(status, dict) else {}
            return result
        for field_name in ("labels", "annotations"):
            if new_meta.get(field_name) is not None and not isinstance(new_meta.get(field_name), dict):
                raise errors.bad_request(f"metadata.{field_name} must be an object")
        pods.check_string_map(new_meta, "labels")
        pods.check_string_map(new_meta, "annotations")
        causes = pods.metadata_causes(new_meta)
        if causes:
            raise errors.invalid(name, causes)
        for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if key in old_obj["metadata"]:
                new_meta[key] = old_obj["metadata"][key]
            else:
                new_meta.pop(key, None)
        new_spec = new.get("spec")
        if not isinstance(new_spec, dict):
            raise errors.invalid(name, [{"reason": "FieldValueRequired", "message": "Required value", "field": "spec"}])
        pods.validate_spec_update(name, old_spec=old_obj["spec"], new_spec=new_spec)
        if new_spec != old_obj["spec"]:
            new_meta["generation"] = int(old_obj["metadata"].get("generation", 1)) + 1
        rest = {k: v for k, v in new.items() if k not in ("kind", "apiVersion", "metadata", "status")}
        return {"kind": "Pod", "apiVersion": "v1", "metadata": new_meta, **rest, "status": old_obj["status"]}

    def _write(self, old: Entry, new: JsonDict, *, dry_run: bool) -> Entry | JsonDict:
        if dry_run:
            return new
        entry = self.store.replace(old, new)
        meta = entry.obj["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and meta.get("deletionGracePeriodSeconds") == 0:
            return self.store.remove(entry)
        return entry

    def replace(self, namespace: str, name: str, *, body: Any, subresource: str | None = None, dry_run: bool = False) -> Entry | JsonDict:
        body = pods.require_object(body)
        pods.raise_if_name_mismatch(body, name)
        old = self.entry(namespace, name)
        want_rv = (body.get("metadata") or {}).get("resourceVersion")
        if want_rv and str(want_rv) != old.obj["metadata"]["resourceVersion"]:
            raise errors.conflict(name)
        new = self._prepare_update(old, body, subresource=subresource)
        return self._write(old, new, dry_run=dry_run)

    def patch(
        self,
        namespace: str,
        name: str,
        *,
        patch: Any,
        content_type: str,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Entry | JsonDict:
        old = self.entry(namespace, name)
        patched = patching.apply_patch(old.clone(), patch, content_type=content_type)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched object is not a JSON object")
        want_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if want_rv and str(want_rv) != old.obj["metadata"]["resourceVersion"]:
            raise errors.conflict(name)
        pods.raise_if_name_mismatch(patched, name)
        new = self._prepare_update(old, patched, subresource=subresource)
        return self._write(old, new, dry_run=dry_run)

    def set_status(self, namespace: str, name: str, *, status: JsonDict) -> Entry:
        """Replace a pod's status outright (the kubelet's and the admin API's write path)."""
        old = self.entry(namespace, name)
        new = dict(old.obj)  # stored objects are never mutated, so a shallow copy may share the rest
        new["metadata"] = dict(old.obj["metadata"])
        new["status"] = status
        return self.store.replace(old, new)

    def write_pod(self, old: Entry, new: JsonDict) -> Entry:
        """Write a whole pod as the control plane would (no strategy applied); no-ops write nothing."""
        return self.store.replace(old, new)

    # -- delete --------------------------------------------------------------------------------
    def delete(self, namespace: str, name: str, *, options: DeleteOptions) -> tuple[Entry | JsonDict, bool]:
        """Delete with the pod grace rules; returns the object to answer with and whether it is gone."""
        entry = self.entry(namespace, name)
        obj = entry.obj
        meta = obj["metadata"]
        if options.uid is not None and options.uid != meta["uid"]:
            raise errors.conflict(name, why=f"Precondition failed: UID in precondition: {options.uid}, UID in object meta: {meta['uid']}")
        if options.resource_version is not None and options.resource_version != meta["resourceVersion"]:
            raise errors.conflict(
                name,
                why=f"Precondition failed: ResourceVersion in precondition: {options.resource_version}, "
                f"ResourceVersion in object meta: {meta['resourceVersion']}",
            )
        spec = obj.get("spec") or {}
        grace = options.grace_period if options.grace_period is not None else spec.get("terminationGracePeriodSeconds", 30)
        grace = 1 if grace < 0 else int(grace)
        if not spec.get("nodeName") or (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            grace = 0
        current = meta.get("deletionGracePeriodSeconds")
        if meta.get("deletionTimestamp") and current is not None and grace >= current:
            return entry, False  # already terminating, nothing shortened: no write, no event
        new = entry.clone()
        new_meta = new["metadata"]
        new_meta["deletionTimestamp"] = rfc3339(time.time() + grace)
        new_meta["deletionGracePeriodSeconds"] = grace
        if not meta.get("deletionTimestamp"):
            new_meta["generation"] = int(meta.get("generation", 1)) + 1
        if options.dry_run:
            return new, False
        marked = self.store.replace(entry, new)
        if grace == 0 and not new_meta.get("finalizers"):
            return self.store.remove(marked), True
        return marked, False


__all__ = ["ApiError", "DeleteOptions", "PodService"]
