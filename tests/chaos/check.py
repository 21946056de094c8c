"""The verdict: what the clients were told (the truth) against what the system
shows from outside (records on the topics, answers of the HTTP APIs).

Pure: no broker, no HTTP; `observe.py` gathers the observations.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from schemas.topics import DEAL_CLOSED, LEAD_CREATED, LEAD_QUALIFIED, ORDER_CREATED

WON, LOST = "won", "lost"
# What one won deal of the load is worth: one LF-CORE at its catalogue price.
WON_DEAL_AMOUNT = Decimal("12000.00")
CURRENCY = "EUR"
# Findings keep a few examples each, enough to start digging in the logs.
EXAMPLES = 10


@dataclass
class Truth:
    """What the clients had acknowledged: the input the system must not lose."""

    captured: set[str] = field(default_factory=set)
    # lead_id -> WON or LOST, for each acknowledged close.
    closed: dict[str, str] = field(default_factory=dict)
    campaign_id: str | None = None

    @property
    def won(self) -> set[str]:
        return {lead for lead, outcome in self.closed.items() if outcome == WON}


@dataclass(frozen=True)
class Event:
    """One record of an event topic, reduced to what the check needs."""

    topic: str
    partition: int
    offset: int
    lead_id: str | None
    event_id: str | None

    @property
    def position(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass
class Observed:
    events: list[Event] = field(default_factory=list)
    # Records per dead-letter topic.
    dead_letters: dict[str, int] = field(default_factory=dict)
    # Marketing's status of each lead, sales' stage of each deal (by lead id),
    # the lead ids orders answers an order for.
    lead_status: dict[str, str] = field(default_factory=dict)
    deal_stage: dict[str, str] = field(default_factory=dict)
    orders: set[str] = field(default_factory=set)
    # GET /campaigns/{campaign_id}/performance, if the run had a campaign.
    performance: dict[str, Any] | None = None


@dataclass
class Verdict:
    acked_leads: int
    acked_closes: int
    lost_leads: int
    dup_leads: int
    lost_orders: int
    dup_orders: int
    redelivered: int
    dlq: int
    # Each kind of problem found and a few examples of it; the counts above are
    # the headline, these say where to look.
    findings: dict[str, list[str]] = field(default_factory=dict)
    # Problems the counts above do not cover (wrong status, campaign figures...).
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        counts = (self.lost_leads, self.dup_leads, self.lost_orders, self.dup_orders, self.dlq)
        return not any(counts) and not self.failures

    def line(self, faults: int) -> str:
        return (
            f"chaos: acked_leads={self.acked_leads} lost_leads={self.lost_leads} "
            f"dup_leads={self.dup_leads} acked_closes={self.acked_closes} "
            f"lost_orders={self.lost_orders} dup_orders={self.dup_orders} "
            f"redelivered={self.redelivered} dlq={self.dlq} faults={faults}"
        )


class _Findings:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, kind: str, example: str) -> None:
        self.counts[kind] += 1
        if len(self.examples[kind]) < EXAMPLES:
            self.examples[kind].append(example)

    def as_dict(self) -> dict[str, list[str]]:
        return {f"{kind} ({self.counts[kind]})": self.examples[kind] for kind in sorted(self.counts)}


def check(truth: Truth, observed: Observed) -> Verdict:
    # topic -> lead -> distinct event ids, and where each lead's first record is.
    ids: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    first_at: dict[tuple[str, str], str] = {}
    records: Counter[str] = Counter()
    findings = _Findings()
    for event in observed.events:
        if event.lead_id is None or event.event_id is None:
            findings.add("unreadable records", event.position)
            continue
        records[event.topic] += 1
        ids[event.topic][event.lead_id].add(event.event_id)
        first_at.setdefault((event.topic, event.lead_id), event.position)
    # Same id again is an at-least-once redelivery, which subscribers drop by id.
    redelivered = sum(records[t] - sum(len(s) for s in ids[t].values()) for t in records)

    def seen(topic: str, lead: str) -> bool:
        return bool(ids[topic].get(lead))

    def where(topic: str, lead: str) -> str:
        return first_at.get((topic, lead), f"no {topic}")

    lost_leads = set()
    for lead in sorted(truth.captured):
        missing = [t for t in (LEAD_CREATED, LEAD_QUALIFIED) if not seen(t, lead)]
        if lead not in observed.deal_stage:
            missing.append("deal")
        if lead in truth.closed and not seen(DEAL_CLOSED, lead):
            missing.append(DEAL_CLOSED)
        for what in missing:
            findings.add(f"acked lead without {what}", f"{lead} ({where(LEAD_QUALIFIED, lead)})")
        if missing:
            lost_leads.add(lead)

    dup_leads = set()
    for topic in (LEAD_CREATED, LEAD_QUALIFIED, DEAL_CLOSED):
        for lead, event_ids in ids[topic].items():
            if len(event_ids) > 1:
                findings.add(f"lead with {len(event_ids)} ids on {topic}", f"{lead} ({where(topic, lead)})")
                dup_leads.add(lead)

    won = truth.won
    lost_orders = set()
    for lead in sorted(won):
        if not seen(ORDER_CREATED, lead):
            findings.add("won close without order.created", f"{lead} ({where(DEAL_CLOSED, lead)})")
            lost_orders.add(lead)
        if lead not in observed.orders:
            findings.add("won close without an order in GET /orders", f"order-{lead}")
            lost_orders.add(lead)
    dup_orders = {lead for lead, event_ids in ids[ORDER_CREATED].items() if len(event_ids) > 1}
    for lead in sorted(dup_orders):
        findings.add("lead with several order.created ids", f"{lead} ({where(ORDER_CREATED, lead)})")

    # Orders only ever come from won closes; one for a lost or never closed deal
    # is made up. (Every close the clients sent was acknowledged, or the run fails.)
    unexpected = (set(ids[ORDER_CREATED]) | observed.orders) - won
    for lead in sorted(unexpected):
        findings.add("order without a won close", f"{lead} ({where(ORDER_CREATED, lead)})")

    wrong_state = Counter[str]()
    for lead, outcome in sorted(truth.closed.items()):
        status = observed.lead_status.get(lead)
        if status != outcome:
            findings.add(f"lead status is not {outcome}", f"{lead}: {status}")
            wrong_state["lead status"] += 1
        stage = observed.deal_stage.get(lead)
        if stage is not None and stage != outcome:
            findings.add(f"deal stage is not {outcome}", f"{lead}: {stage}")
            wrong_state["deal stage"] += 1

    failures = [f"{n} with a wrong {what}" for what, n in wrong_state.items()]
    if unexpected:
        failures.append(f"{len(unexpected)} orders without a won close")
    if findings.counts["unreadable records"]:
        failures.append(f"{findings.counts['unreadable records']} unreadable records")
    failures += campaign_mismatches(truth, observed.performance)

    return Verdict(
        acked_leads=len(truth.captured),
        acked_closes=len(truth.closed),
        lost_leads=len(lost_leads),
        dup_leads=len(dup_leads),
        lost_orders=len(lost_orders),
        dup_orders=len(dup_orders),
        redelivered=redelivered,
        dlq=sum(observed.dead_letters.values()),
        findings=findings.as_dict(),
        failures=failures,
    )


def campaign_expected(truth: Truth) -> dict[str, Any]:
    won = len(truth.won)
    return {
        "leads": len(truth.captured),
        "qualified": len(truth.captured),
        "deals_won": won,
        "deals_lost": len(truth.closed) - won,
        "revenue": {CURRENCY: WON_DEAL_AMOUNT * won} if won else {},
    }


def campaign_mismatches(truth: Truth, performance: dict[str, Any] | None) -> list[str]:
    """The campaign's closed-loop figures against the truth; empty when they agree."""
    if truth.campaign_id is None:
        return []
    if performance is None:
        return [f"no performance for campaign {truth.campaign_id}"]
    actual = {
        **{k: performance.get(k) for k in ("leads", "qualified", "deals_won", "deals_lost")},
        "revenue": {m["currency"]: Decimal(m["amount"]) for m in performance.get("revenue", [])},
    }
    return [
        f"campaign {name} is {actual[name]}, acknowledged {value}"
        for name, value in campaign_expected(truth).items()
        if actual[name] != value
    ]


@dataclass
class WebhookVerdict:
    """What a subscribed receiver got against what the topics hold."""

    expected: int
    delivered: int
    lost: int
    unexpected: int
    redelivered: int
    unverified: int
    findings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.unexpected or self.unverified)

    def line(self) -> str:
        return (
            f"lost_webhooks={self.lost} unexpected_webhooks={self.unexpected} "
            f"unverified_webhooks={self.unverified} redelivered_webhooks={self.redelivered}"
        )


def check_webhooks(
    events: list[Event], received: Counter[str], unverified: int, topics: tuple[str, ...]
) -> WebhookVerdict:
    """Every distinct event id on `topics` delivered to the receiver at least once
    (a webhook-id again is a redelivery the receiver drops), nothing delivered that
    is not on them, and every delivery verified."""
    on_topics = {e.event_id: e for e in events if e.topic in topics and e.event_id is not None}
    findings = _Findings()
    for event_id in sorted(set(on_topics) - set(received)):
        event = on_topics[event_id]
        findings.add("event never delivered", f"{event_id} ({event.position}, lead {event.lead_id})")
    for event_id in sorted(set(received) - set(on_topics)):
        findings.add("delivered id not on the topics", event_id)
    return WebhookVerdict(
        expected=len(on_topics),
        delivered=len(set(received) & set(on_topics)),
        lost=findings.counts["event never delivered"],
        unexpected=findings.counts["delivered id not on the topics"],
        redelivered=sum(n - 1 for n in received.values()),
        unverified=unverified,
        findings=findings.as_dict(),
    )
