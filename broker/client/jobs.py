"""One job as an operator sees it: its ledger entry and the last result published for it."""
from __future__ import annotations

from dataclasses import dataclass

from podq.broker.store import keys, streams
from podq.broker.store.connection import Client
from podq.broker.store.ledger import Ledger, LedgerEntry
from podq.shared.errors import DecodeError
from podq.shared.records import KubernetesWatch


@dataclass(frozen=True, kw_only=True)
class JobStatus:
    entry: LedgerEntry
    last_entry_id: str | None
    last_result: KubernetesWatch | None

    def summary(self) -> str:
        """One line: where the job stands (ledger state, terminal state, pod, or why intake refused it)."""
        entry = self.entry
        if entry.refused:
            return f"refused by intake: {entry.refused}"
        text = entry.state.value if entry.state else "-"
        if entry.terminal_state:
            text += f" ({entry.terminal_state})"
        elif entry.last_state:
            text += f", last result {entry.last_state}"
        if entry.pod_name:
            text += f", pod {entry.namespace or '-'}/{entry.pod_name}"
        return text

    def lines(self) -> list[str]:
        entry, result = self.entry, self.last_result
        job = entry.job
        lines = [f"job        {entry.job_id}",
                 f"task       {job.key if job else result.key if result else '-'}",
                 f"scheduler  {entry.scheduler_id}",
                 f"state      {entry.state.value if entry.state else '-'}"
                 + (f" ({entry.terminal_state})" if entry.terminal_state else ""),
                 f"pod        {entry.namespace or '-'}/{entry.pod_name or '-'} uid={entry.uid or '-'}",
                 f"deliveries {entry.deliveries}"]
        if entry.refused:
            lines.append(f"refused    {entry.refused}")
        if result is None:
            lines.append(f"result     {entry.last_state or entry.terminal_state or '-'}"
                         + (f" (entry {self.last_entry_id}, trimmed)" if self.last_entry_id else ""))
        else:
            line = f"result     {result.state.value} from {result.source.value} (entry {self.last_entry_id})"
            details = result.failure_details
            if details is not None:
                why = [part for part in (details.reason or details.container_reason or details.pod_reason,
                                         details.message or details.container_message or details.pod_message,
                                         f"exit {details.exit_code}" if details.exit_code is not None else None)
                       if part]
                line += ": " + " ".join(why)
            lines.append(line)
        return lines


def job_status(client: Client, job_id: str) -> JobStatus | None:
    """The job's ledger entry and last published result, or None for a job podq never admitted."""
    entry = Ledger(client).get(job_id)
    if entry is None or entry.state is None:
        return None
    last_entry_id = entry.last_entry
    result = None
    if last_entry_id and entry.scheduler_id:
        fields = streams.read_entry(client, keys.results_stream(entry.scheduler_id), last_entry_id)
        if fields is not None:
            try:
                result = KubernetesWatch.decode(streams.record_of(fields) or b"")
            except DecodeError:
                result = None
    return JobStatus(entry=entry, last_entry_id=last_entry_id, last_result=result)


def job_entries(client: Client, job_ids: list[str]) -> dict[str, LedgerEntry]:
    """The ledger's summary of each job podq knows (state, terminal state, owner), in one round trip."""
    return Ledger(client).entries(job_ids) if job_ids else {}
