"""IVR path records: every caller's way through the IVR (nodes, keys, prompts, lookups) and how it
ended, written by a background writer in batches; and the per-flow, per-node report."""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.db.models import IvrStep, IvrVisit
from callcenter.db.writer import BatchWriter

log = logging.getLogger(__name__)


class PathWriter(BatchWriter[tuple[str, dict[str, Any]]]):
    """Visit and step rows, stored with bulk inserts, one transaction per batch."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, "IVR path records")

    def _store(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        with self.db.session() as session:
            visits = [row for kind, row in batch if kind == "visit"]
            if visits:
                session.execute(insert(IvrVisit), visits)
            steps = [row for kind, row in batch if kind == "step"]
            if steps:
                session.execute(insert(IvrStep), steps)
            for kind, row in batch:
                if kind == "finish":
                    session.execute(update(IvrVisit).where(IvrVisit.id == row["id"]).values(
                        {k: v for k, v in row.items() if k != "id"}))

    def add_row(self, kind: str, row: dict[str, Any]) -> None:
        self.add((kind, row))


@dataclass
class VisitRecorder:
    """The PathRecorder of one call."""

    writer: PathWriter
    channel_id: str
    flow: str
    version: str
    did: str
    caller: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    seq: int = 0

    def __post_init__(self) -> None:
        self.writer.add_row("visit", {"id": self.id, "channel_id": self.channel_id, "flow": self.flow,
                                  "version": self.version, "did": self.did, "caller": self.caller,
                                  "started_at": datetime.now(UTC), "outcome": "", "target": "",
                                  "last_flow": self.flow, "last_node": ""})

    def step(self, flow: str, node: str, action: str, detail: str = "") -> None:
        self.seq += 1
        self.writer.add_row("step", {"visit_id": self.id, "seq": self.seq, "at": datetime.now(UTC), "flow": flow,
                                 "node": node, "action": action, "detail": detail[:300]})

    def finish(self, outcome: str, target: str, flow: str, node: str) -> None:
        self.writer.add_row("finish", {"id": self.id, "ended_at": datetime.now(UTC), "outcome": outcome,
                                   "target": target, "last_flow": flow, "last_node": node})


@dataclass
class NodeReport:
    flow: str
    node: str
    passed: int = 0
    keys: Counter[str] = field(default_factory=Counter)
    hangups: int = 0


def ivr_report(session: Session, since: datetime | None = None, flow: str | None = None) -> list[NodeReport]:
    """Per flow and node: callers who passed, what they chose, and who hung up there."""
    report: dict[tuple[str, str], NodeReport] = defaultdict(lambda: NodeReport("", ""))

    def entry(flow_name: str, node: str) -> NodeReport:
        item = report[(flow_name, node)]
        item.flow, item.node = flow_name, node
        return item

    steps = select(IvrStep.flow, IvrStep.node, IvrStep.action, IvrStep.detail, func.count()) \
        .where(IvrStep.action.in_(("enter", "key"))).group_by(IvrStep.flow, IvrStep.node, IvrStep.action,
                                                                IvrStep.detail)
    if since is not None:
        steps = steps.where(IvrStep.at >= since)
    if flow is not None:
        steps = steps.where(IvrStep.flow == flow)
    for flow_name, node, action, detail, count in session.execute(steps):
        if action == "enter":
            entry(flow_name, node).passed += count
        else:
            entry(flow_name, node).keys[detail] += count
    hangups = select(IvrVisit.last_flow, IvrVisit.last_node, func.count()) \
        .where(IvrVisit.outcome == "caller_hangup").group_by(IvrVisit.last_flow, IvrVisit.last_node)
    if since is not None:
        hangups = hangups.where(IvrVisit.started_at >= since)
    if flow is not None:
        hangups = hangups.where(IvrVisit.last_flow == flow)
    for flow_name, node, count in session.execute(hangups):
        entry(flow_name, node).hangups += count
    return sorted(report.values(), key=lambda r: (r.flow, -r.passed, r.node))

