"""The simulated scheduler + kubelet: drives every pod through the real sequence of status writes.

Each step is an ordinary write through the store (new resourceVersion, fanned out to watchers), after a
configurable delay. Outcome annotations (see outcomes.py) pick how the pod's life goes; with the container
runtime on (runtime.py, ``--run-containers``) the containers' processes decide instead how the run ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

from . import errors
from . import outcomes as oc
from .clock import rfc3339
from .events import KUBELET, NORMAL, SCHEDULER, WARNING, EventLog
from .history import ADDED, DELETED, Event
from .pods import qos_class
from .runtime import DEADLINE_MESSAGE, ConfigError, ContainerRuntime, ExitInfo, Launch, Run
from .service import DeleteOptions, PodService
from .settings import SimSettings
from .statuses import HOST_IP, NODE_NAME, ContainerModel, PodModel, condition
from .store import Entry

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


class _Gone(Exception):
    """The pod this task drives was deleted or replaced."""


@dataclass(slots=True)
class _Pod:
    uid: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name} uid={self.uid}"


class Kubelet:
    def __init__(self, *, service: PodService, settings: SimSettings, runtime: ContainerRuntime | None = None,
                 events: EventLog | None = None) -> None:
        self.service = service
        self.events = events
        self.runtime = runtime
        self.settings = settings
        self.delays = settings.delays
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.waiting: dict[str, tuple[_Pod, float]] = {}
        """pods added while the kubelet is paused: uid -> (pod, loop time its first step is due); their lives
        start on resume, so a paused kubelet holds no task per pod"""
        self.models: dict[str, PodModel] = {}
        self.detached: set[str] = set()
        self._resumed = asyncio.Event()
        if not settings.kubelet_paused:
            self._resumed.set()
        self._next_ip = 0

    # -- control ------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    def pause(self) -> None:
        self._resumed.clear()
        log.info("kubelet paused")

    def resume(self) -> None:
        self._resumed.set()
        waiting, self.waiting = self.waiting, {}
        # In the order their first steps fall due: the order paused tasks would have been woken in.
        for pod, due in sorted(waiting.values(), key=lambda item: item[1]):
            self._start(pod, self._life(pod, first_due=due), what="life")
        log.info("kubelet resumed")

    def detach(self, uid: str) -> None:
        """Stop driving a pod's lifecycle (its status was set by hand); deletions are still completed."""
        self.detached.add(uid)
        self.waiting.pop(uid, None)
        task = self.tasks.pop(uid, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def close(self) -> None:
        self.waiting.clear()
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.runtime is not None:
            await self.runtime.close()

    # -- store listener -----------------------------------------------------------------------
    def pod_written(self, event: Event) -> None:
        meta = event.new["metadata"]
        pod = _Pod(meta["uid"], meta["namespace"], meta["name"])
        if event.kind == ADDED:
            if self.paused:
                self.waiting[pod.uid] = (pod, asyncio.get_running_loop().time() + self._delay(self.delays.schedule))
            else:
                self._start(pod, self._life(pod), what="life")
        elif event.kind == DELETED:
            self.waiting.pop(pod.uid, None)
            task = self.tasks.pop(pod.uid, None)
            if task is not None and task is not asyncio.current_task():
                task.cancel()
            self.models.pop(pod.uid, None)
            self.detached.discard(pod.uid)
            if self.runtime is not None:
                self.runtime.forget(pod.uid, event.new)
        else:
            old_meta = (event.old or {}).get("metadata") or {}
            grace = meta.get("deletionGracePeriodSeconds")
            if meta.get("deletionTimestamp") and not old_meta.get("deletionTimestamp") and grace:
                self.waiting.pop(pod.uid, None)
                task = self.tasks.pop(pod.uid, None)
                if task is not None and task is not asyncio.current_task():
                    task.cancel()
                self._start(pod, self._terminate(pod, int(grace)), what="terminate")

    def _start(self, pod: _Pod, coro: Any, *, what: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"kubelet-{what}:{pod}")
        self.tasks[pod.uid] = task
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, _Gone):
            log.error("kubelet task %s crashed", task.get_name(), exc_info=exc)

    # -- helpers ------------------------------------------------------------------------------
    def _event(self, pod: _Pod, type_: str, reason: str, message: str, *, component: str = KUBELET,
               container: str | None = None) -> None:
        """Report a core/v1 Event about ``pod`` (as the real scheduler and kubelet do at each step)."""
        if self.events is not None:
            self.events.record(namespace=pod.namespace, pod=pod.name, uid=pod.uid, type_=type_, reason=reason,
                               message=message, component=component,
                               field_path=f"spec.containers{{{container}}}" if container else None)

    def _delay(self, delay: float) -> float:
        if self.delays.jitter:
            delay *= 1 + random.random() * self.delays.jitter
        return delay

    async def _step(self, delay: float) -> None:
        await asyncio.sleep(self._delay(delay))
        await self._resumed.wait()

    async def _step_until(self, due: float) -> None:
        """A step whose delay was drawn earlier and ends at loop time ``due`` (a life deferred while paused).

        Past ``due`` it goes straight on, as a task woken by the resume would; before it, it sleeps the rest
        of the delay and then waits for the kubelet to run, as ``_step`` does.
        """
        delay = due - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
            await self._resumed.wait()

    def _current(self, pod: _Pod) -> Entry:
        entry = self.service.store.get(pod.namespace, pod.name)
        if entry is None or entry.obj["metadata"]["uid"] != pod.uid:
            raise _Gone(str(pod))
        return entry

    def _write(self, pod: _Pod, model: PodModel) -> None:
        self._current(pod)
        self.service.set_status(pod.namespace, pod.name, status=model.render())

    def _pod_ip(self) -> str:
        self._next_ip += 1
        n = self._next_ip
        return f"10.244.{(n // 250) % 250}.{n % 250 + 2}"

    # -- a pod's life -------------------------------------------------------------------------
    async def _life(self, pod: _Pod, *, first_due: float | None = None) -> None:
        d = self.delays
        if first_due is None:
            await self._step(d.schedule)
        else:
            await self._step_until(first_due)
        entry = self._current(pod)
        obj = entry.obj
        spec = obj["spec"]
        outcome = oc.outcome_of(
            obj["metadata"].get("annotations"), default_run_seconds=self.settings.default_run_seconds, pod=str(pod)
        )
        qos = qos_class(spec)
        if outcome.kind == oc.UNSCHEDULABLE:
            msg = outcome.message_for(oc.UNSCHEDULABLE)
            status = {"phase": "Pending", "qosClass": qos, "conditions": [condition("PodScheduled", "False", at=rfc3339(), reason="Unschedulable", message=msg)]}
            self.service.set_status(pod.namespace, pod.name, status=status)
            self._event(pod, WARNING, "FailedScheduling", msg, component=SCHEDULER)
            return
        # Stored objects are never mutated, so the bound pod shares every part it does not change.
        bound = {
            **obj,
            "metadata": dict(obj["metadata"]),
            "spec": {**spec, "nodeName": NODE_NAME},
            "status": {**obj["status"], "conditions": [condition("PodScheduled", "True", at=rfc3339())]},
        }
        self.service.write_pod(entry, bound)
        self._event(pod, NORMAL, "Scheduled", f"Successfully assigned {pod.namespace}/{pod.name} to {NODE_NAME}",
                    component=SCHEDULER)
        model = PodModel(
            qos=qos,
            containers=[(c["name"], c.get("image", "")) for c in spec.get("containers") or []],
            init_containers=[(c["name"], c.get("image", "")) for c in spec.get("initContainers") or []],
        )
        model.set_condition("PodScheduled", "True")
        self.models[pod.uid] = model
        await self._step(d.start)
        if outcome.kind == oc.PROVIDER_FAILED:
            status = {"phase": "Failed", "reason": "ProviderFailed", "message": outcome.message_for(oc.PROVIDER_FAILED), "qosClass": qos}
            if spec.get("restartPolicy") != "Never":
                status["phase"] = "Pending"
            self._current(pod)
            self.service.set_status(pod.namespace, pod.name, status=status)
            return
        self._first_status(model)
        self._write(pod, model)
        if outcome.kind == oc.FAILED_MOUNT:
            await self._failed_mount(pod, outcome=outcome, spec=spec)
            return
        await self._step(d.sandbox)
        model.set_condition("PodReadyToStartContainers", "True")
        model.pod_ip = self._pod_ip()
        self._write(pod, model)
        if self.runtime is not None:
            if model.init_containers and not await self._run_init_processes(pod, model, obj=obj):
                return
        elif model.init_containers and not await self._run_init_containers(pod, model, outcome=outcome):
            return
        if not await self._pull_images(pod, model, outcome=outcome):
            return
        await self._step(d.ready)
        if self.runtime is not None:
            await self._run_processes(pod, model, obj=obj)
        else:
            await self._run_main(pod, model, outcome=outcome, spec=spec)

    def _first_status(self, model: PodModel) -> None:
        model.host_ip = HOST_IP
        model.start_time = rfc3339()
        model.report_containers = True
        model.set_condition("PodReadyToStartContainers", "False")
        if model.init_containers:
            names = ",".join(c.name for c in model.init_containers)
            model.set_condition("Initialized", "False", reason="ContainersNotInitialized", message=f"containers with incomplete status: [{names}]")
            for c in model.init_containers + model.containers:
                c.wait("PodInitializing")
        else:
            model.set_condition("Initialized", "True")
        model.mark_containers_unready()

    async def _run_init_containers(self, pod: _Pod, model: PodModel, *, outcome: oc.Outcome) -> bool:
        for index, init in enumerate(model.init_containers):
            await self._step(self.delays.init)
            init.run(rfc3339(), ready=False)
            self._write(pod, model)
            await self._step(self.delays.init)
            if outcome.kind == oc.INIT_FAILED and index == 0:
                init.terminate(rfc3339(), exit_code=outcome.init_exit_code, reason="Error", message=outcome.message)
                model.phase = "Failed"
                self._write(pod, model)
                await self._teardown(pod, model)
                return False
            init.terminate(rfc3339(), exit_code=0, reason="Completed")
            self._write(pod, model)
        model.set_condition("Initialized", "True")
        for c in model.containers:
            c.wait("ContainerCreating")
        return True

    async def _pull_images(self, pod: _Pod, model: PodModel, *, outcome: oc.Outcome) -> bool:
        main = model.containers[0]
        kind = outcome.kind
        if kind in (oc.INVALID_IMAGE_NAME, oc.CREATE_CONTAINER_CONFIG_ERROR):
            message = outcome.message_for(kind, image=main.image)
            main.wait(kind, message)
            self._write(pod, model)
            self._event(pod, WARNING, "InspectFailed" if kind == oc.INVALID_IMAGE_NAME else "Failed",
                        message if kind == oc.INVALID_IMAGE_NAME else f"Error: {message}", container=main.name)
            return False
        if kind in (oc.ERR_IMAGE_PULL, oc.IMAGE_PULL_BACK_OFF):
            await self._image_pull_back_off(pod, model, outcome=outcome)
            return False
        if kind == oc.PULL_QPS_EXCEEDED:
            main.wait("ErrImagePull", outcome.message or "pull QPS exceeded")
            self._write(pod, model)
            await self._step(self.delays.backoff)
            main.wait("ContainerCreating")
        for c in model.containers:
            self._event(pod, NORMAL, "Pulled", f'Container image "{c.image}" already present on machine', container=c.name)
        return True

    async def _image_pull_back_off(self, pod: _Pod, model: PodModel, *, outcome: oc.Outcome) -> None:
        main = model.containers[0]
        backoff = self.delays.backoff
        retry = 0
        while True:  # loop "image-pull-back-off": ends when the pod is deleted (_Gone or cancelled)
            message = outcome.message_for(oc.ERR_IMAGE_PULL, image=main.image)
            self._event(pod, NORMAL, "Pulling", f'Pulling image "{main.image}"', container=main.name)
            main.wait(oc.ERR_IMAGE_PULL, message)
            self._write(pod, model)
            self._event(pod, WARNING, "Failed", f'Failed to pull image "{main.image}": {message}', container=main.name)
            self._event(pod, WARNING, "Failed", "Error: ErrImagePull", container=main.name)
            await self._step(min(backoff * 2**retry, backoff * 30))
            main.wait(oc.IMAGE_PULL_BACK_OFF, f'Back-off pulling image "{main.image}"')
            self._write(pod, model)
            self._event(pod, NORMAL, "BackOff", f'Back-off pulling image "{main.image}"', container=main.name)
            self._event(pod, WARNING, "Failed", "Error: ImagePullBackOff", container=main.name)
            await self._step(min(backoff * 2**retry, backoff * 30))
            retry += 1

    async def _failed_mount(self, pod: _Pod, *, outcome: oc.Outcome, spec: JsonDict) -> None:
        """A volume that cannot be mounted (a ConfigMap that does not exist): the pod stays ContainerCreating
        and the kubelet reports FailedMount again after each back-off, until the pod is deleted."""
        volume, config_map = "config", "missing-config"
        for item in spec.get("volumes") or []:
            if isinstance(item.get("configMap"), dict):
                volume, config_map = item.get("name", volume), item["configMap"].get("name", config_map)
                break
        message = outcome.message or f'MountVolume.SetUp failed for volume "{volume}" : configmap "{config_map}" not found'
        backoff = self.delays.backoff
        retry = 0
        while True:  # loop "failed-mount": ends when the pod is deleted (_Gone or cancelled)
            self._current(pod)
            self._event(pod, WARNING, "FailedMount", message)
            await self._step(min(backoff * 2**retry, backoff * 30))
            retry += 1

    async def _run_main(self, pod: _Pod, model: PodModel, *, outcome: oc.Outcome, spec: JsonDict) -> None:
        restart_policy = spec.get("restartPolicy", "Always")
        deadline = spec.get("activeDeadlineSeconds")
        while True:  # loop "container-restarts": one pass per container start; ends on a terminal phase
            started = rfc3339()
            for c in model.containers:
                c.run(started)
                self._event(pod, NORMAL, "Created", f"Created container: {c.name}", container=c.name)
                self._event(pod, NORMAL, "Started", f"Started container {c.name}", container=c.name)
            model.phase = "Running"
            model.set_condition("Ready", "True")
            model.set_condition("ContainersReady", "True")
            self._write(pod, model)
            run_for = outcome.run_seconds
            if outcome.kind == oc.DEADLINE_EXCEEDED or (isinstance(deadline, int) and 0 < deadline < run_for):
                await self._step(min(run_for, deadline) if isinstance(deadline, int) and deadline > 0 else run_for)
                await self._fail_pod(pod, model, reason="DeadlineExceeded", message=outcome.message_for(oc.DEADLINE_EXCEEDED))
                return
            await self._step(run_for)
            if outcome.kind == oc.EVICTED:
                self._evict(pod, model, message=outcome.message_for(oc.EVICTED))
                return
            code = outcome.exit_code
            reason = "OOMKilled" if outcome.kind == oc.OOM_KILLED else ("Completed" if code == 0 else "Error")
            finished = rfc3339()
            for c in model.containers:
                c.terminate(finished, exit_code=code, reason=reason)
            if restart_policy == "Never" or (restart_policy == "OnFailure" and code == 0):
                await self._finish(pod, model, succeeded=code == 0)
                return
            await self._crash_loop(pod, model)

    async def _crash_loop(self, pod: _Pod, model: PodModel) -> None:
        for c in model.containers:
            c.last_state = c.state
            c.restart_count += 1
            seconds = min(10 * 2 ** (c.restart_count - 1), 300)
            human = f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"
            c.wait("CrashLoopBackOff", f"back-off {human} restarting failed container={c.name} pod={pod.name}_{pod.namespace}({pod.uid})")
        model.mark_containers_unready()
        self._write(pod, model)
        restarts = model.containers[0].restart_count
        await self._step(min(self.delays.backoff * 2 ** (restarts - 1), self.delays.backoff * 30))

    async def _finish(self, pod: _Pod, model: PodModel, *, succeeded: bool) -> None:
        model.phase = "Succeeded" if succeeded else "Failed"
        reason = "PodCompleted" if succeeded else "PodFailed"
        model.set_condition("Ready", "False", reason=reason)
        model.set_condition("ContainersReady", "False", reason=reason)
        if succeeded:
            model.set_condition("Initialized", "True", reason="PodCompleted")
        self._write(pod, model)
        await self._teardown(pod, model)

    async def _teardown(self, pod: _Pod, model: PodModel) -> None:
        await self._step(self.delays.teardown)
        model.set_condition("PodReadyToStartContainers", "False")
        self._write(pod, model)

    async def _fail_pod(self, pod: _Pod, model: PodModel, *, reason: str, message: str) -> None:
        finished = rfc3339()
        for c in model.containers:
            if "running" in c.state:
                c.terminate(finished, exit_code=137, reason="Error")
        model.reason = reason
        model.message = message
        await self._finish(pod, model, succeeded=False)

    def _evict(self, pod: _Pod, model: PodModel, *, message: str) -> None:
        entry = self._current(pod)
        status = entry.clone()["status"]
        at = rfc3339()
        keep = [c for c in status.get("conditions") or [] if c["type"] in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
        status = {
            "phase": "Failed",
            "reason": "Evicted",
            "message": message,
            "qosClass": status.get("qosClass", model.qos),
            "hostIP": model.host_ip,
            "hostIPs": [{"ip": model.host_ip}],
            "startTime": model.start_time,
            "conditions": [condition("DisruptionTarget", "True", at=at, reason="TerminationByKubelet", message=message), *keep],
        }
        self.models.pop(pod.uid, None)
        self.service.set_status(pod.namespace, pod.name, status=status)
        self._event(pod, WARNING, "Evicted", message)

    # -- the container runtime (--run-containers) ---------------------------------------------------
    def _launches(self, pod: _Pod, model: PodModel, obj: JsonDict, key: str) -> dict[str, Launch] | None:
        """Each container's process, or None after reporting CreateContainerConfigError."""
        assert self.runtime is not None
        launches: dict[str, Launch] = {}
        for container in obj["spec"].get(key) or []:
            try:
                launches[container["name"]] = self.runtime.prepare(obj, container, pod_ip=model.pod_ip, host_ip=model.host_ip)
            except ConfigError as exc:
                for c in (model.init_containers if key == "initContainers" else model.containers):
                    if c.name == container["name"]:
                        c.wait("CreateContainerConfigError", str(exc))
                self._write(pod, model)
                return None
        return launches

    def _start_run(self, obj: JsonDict, c: ContainerModel, launch: Launch) -> Run:
        assert self.runtime is not None and c.cid is not None
        return self.runtime.start(obj, c.name, launch, container_id=c.cid)

    async def _run_init_processes(self, pod: _Pod, model: PodModel, *, obj: JsonDict) -> bool:
        launches = self._launches(pod, model, obj, "initContainers")
        if launches is None:
            return False
        for init in model.init_containers:
            await self._step(self.delays.init)
            init.run(rfc3339(), ready=False)
            run = self._start_run(obj, init, launches[init.name])
            self._write(pod, model)
            info = await asyncio.shield(run.done)
            await self._resumed.wait()
            init.terminate(rfc3339(), exit_code=info.exit_code, reason=info.reason, message=info.message)
            if info.exit_code != 0:
                model.phase = "Failed"
                self._write(pod, model)
                await self._teardown(pod, model)
                return False
            self._write(pod, model)
        model.set_condition("Initialized", "True")
        for c in model.containers:
            c.wait("ContainerCreating")
        return True

    async def _run_processes(self, pod: _Pod, model: PodModel, *, obj: JsonDict) -> None:
        """Run the containers' processes; their exits (or the deadline) end the pod."""
        spec = obj["spec"]
        restart_policy = spec.get("restartPolicy", "Always")
        grace = float(spec.get("terminationGracePeriodSeconds", 30))
        deadline = spec.get("activeDeadlineSeconds")
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + deadline if isinstance(deadline, int) and deadline > 0 else None
        launches = self._launches(pod, model, obj, "containers")
        if launches is None:
            return
        while True:  # loop "container-restarts": one pass per start of the containers; ends on a terminal phase
            started = rfc3339()
            runs: dict[str, Run] = {}
            for c in model.containers:
                c.run(started)
                runs[c.name] = self._start_run(obj, c, launches[c.name])
            model.phase = "Running"
            model.set_condition("Ready", "True")
            model.set_condition("ContainersReady", "True")
            self._write(pod, model)
            infos = await self._await_exits(pod, model, runs, deadline_at=deadline_at)
            if infos is None:  # activeDeadlineSeconds passed
                infos = await self.runtime.stop_pod(pod.uid, grace) if self.runtime is not None else {}
                await self._resumed.wait()
                self._record_exits(model, infos)
                model.reason = "DeadlineExceeded"
                model.message = DEADLINE_MESSAGE
                await self._finish(pod, model, succeeded=False)
                return
            failed = any(info.exit_code != 0 for info in infos.values())
            if restart_policy == "Never" or (restart_policy == "OnFailure" and not failed):
                await self._finish(pod, model, succeeded=not failed)
                return
            await self._crash_loop(pod, model)

    async def _await_exits(self, pod: _Pod, model: PodModel, runs: dict[str, Run], *, deadline_at: float | None) -> dict[str, ExitInfo] | None:
        """Wait for every container to end, reporting each one that ends while others still run; None at the deadline."""
        loop = asyncio.get_running_loop()
        waiting = {asyncio.shield(run.done): name for name, run in runs.items()}
        infos: dict[str, ExitInfo] = {}
        while waiting:  # loop "container-exits": ends when every container ended or at the deadline
            timeout = None if deadline_at is None else max(0.0, deadline_at - loop.time())
            done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                for future in waiting:
                    future.cancel()
                return None
            await self._resumed.wait()
            for future in done:
                infos[waiting.pop(future)] = future.result()
            self._record_exits(model, infos)
            if waiting:
                model.mark_containers_unready()
                self._write(pod, model)
        return infos

    def _record_exits(self, model: PodModel, infos: dict[str, ExitInfo]) -> None:
        finished = rfc3339()
        for c in model.containers:
            info = infos.get(c.name)
            if info is not None and "running" in c.state:
                c.terminate(finished, exit_code=info.exit_code, reason=info.reason, message=info.message)

    async def _stop_processes(self, pod: _Pod, grace: int) -> None:
        """Graceful deletion with the runtime on: SIGTERM now, SIGKILL after the grace period, report the exits."""
        assert self.runtime is not None
        infos = await self.runtime.stop_pod(pod.uid, float(grace))
        await self._resumed.wait()
        self._current(pod)
        model = self.models.get(pod.uid)
        if model is None or pod.uid in self.detached or model.phase not in ("Running", "Pending") or not infos:
            return
        if not any("running" in c.state for c in model.containers if c.name in infos):
            return
        self._record_exits(model, infos)
        if all("terminated" in c.state for c in model.containers):
            failed = any(c.state["terminated"]["exitCode"] != 0 for c in model.containers)
            model.phase = "Failed" if failed else "Succeeded"
            reason = "PodFailed" if failed else "PodCompleted"
            model.set_condition("Ready", "False", reason=reason)
            model.set_condition("ContainersReady", "False", reason=reason)
        else:
            model.mark_containers_unready()
        self._write(pod, model)

    # -- graceful deletion --------------------------------------------------------------------
    async def _terminate(self, pod: _Pod, grace: int) -> None:
        model = self.models.get(pod.uid)
        for c in model.containers if model is not None and model.report_containers else ():
            self._event(pod, NORMAL, "Killing", f"Stopping container {c.name}", container=c.name)
        if self.runtime is not None:
            await self._stop_processes(pod, grace)
            await self._terminated(pod)
            return
        await self._step(min(self.delays.kill, float(grace)))
        self._current(pod)
        model = self.models.get(pod.uid)
        if model is not None and pod.uid not in self.detached and model.phase in ("Running", "Pending") and model.report_containers:
            finished = rfc3339()
            killed = False
            for c in model.containers:
                if "running" in c.state:
                    c.terminate(finished, exit_code=143, reason="Error")
                    killed = True
            if killed:
                model.phase = "Failed"
                model.set_condition("Ready", "False", reason="PodFailed")
                model.set_condition("ContainersReady", "False", reason="PodFailed")
                self._write(pod, model)
        await self._terminated(pod)

    async def _terminated(self, pod: _Pod) -> None:
        """The containers are stopped: the kubelet's final DELETE with grace 0 and a uid precondition."""
        await self._step(self.delays.finalize)
        self._current(pod)
        try:
            self.service.delete(pod.namespace, pod.name, options=DeleteOptions(grace_period=0, uid=pod.uid))
        except errors.ApiError as exc:
            log.info("kubelet could not finish deleting %s: %s", pod, exc.message)
