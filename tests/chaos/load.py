"""The load: clients that capture leads and close their deals at a steady rate,
retrying the way real clients do until each write is acknowledged. What they
were told is the truth the check holds the system to."""

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import httpx
from rich.console import Console

from tests.chaos.check import LOST, WON, Truth

# The largest page the list APIs give (judged from outside: not imported from services).
PAGE_LIMIT = 1000
LOST_REASONS = ("no_budget", "no_need", "timing", "competitor", "unresponsive")
# Business domains (no free or disposable mail): with consent and a demo request,
# every lead qualifies at once.
COMPANIES = {
    "acme-freight.de": ("Acme Freight", "logistics", "DE"),
    "nordwind-software.de": ("Nordwind Software", "software", "DE"),
    "helvetia-precision.ch": ("Helvetia Precision", "manufacturing", "CH"),
    "lumen-health.nl": ("Lumen Health", "healthcare", "NL"),
    "orbit-retail.fr": ("Orbit Retail", "retail", "FR"),
}
BACKOFF_FIRST, BACKOFF_CAP = 0.1, 2.0

Judgement = Literal["ack", "retry", "refuse"]
# Captured leads waiting for their close, with their ids; None tells a closer to finish.
ToClose = asyncio.Queue[tuple["LeadPlan", str] | None]


@dataclass(frozen=True)
class LeadPlan:
    """What the clients will do with one lead."""

    index: int
    email: str
    outcome: str
    lost_reason: str | None = None


def plan_leads(count: int, seed: int, won_share: float) -> list[LeadPlan]:
    rng = random.Random(seed)
    domains = sorted(COMPANIES)
    plans = []
    for i in range(count):
        email = f"lead{i}.s{seed}@{domains[i % len(domains)]}"
        if won_share >= 1.0 or rng.random() < won_share:
            plans.append(LeadPlan(i, email, WON))
        else:
            plans.append(LeadPlan(i, email, LOST, rng.choice(LOST_REASONS)))
    return plans


def lead_body(lead: LeadPlan, campaign_id: str | None) -> dict[str, Any]:
    name, industry, country = COMPANIES[lead.email.split("@")[1]]
    return {
        "channel": "web",
        "campaign_id": campaign_id,
        "contact": {"email": lead.email, "name": f"Lead {lead.index}", "title": "CTO"},
        "company": {"name": name, "industry": industry, "size": 250, "country": country},
        "consent": True,
        "intent": "demo_request",
    }


def close_body(lead: LeadPlan) -> dict[str, Any]:
    if lead.outcome == WON:
        return {"outcome": WON, "lines": [{"sku": "LF-CORE", "quantity": 1}]}
    return {"outcome": LOST, "lost_reason": lead.lost_reason}


def campaign_body(seed: int) -> dict[str, Any]:
    today = date.today()
    return {
        "name": f"Chaos run {seed}",
        "channel": "web",
        "budget": {"amount": "50000.00", "currency": "EUR"},
        "starts_on": today.isoformat(),
        "ends_on": (today + timedelta(days=30)).isoformat(),
    }


class NotAcknowledged(Exception):
    """A write the system refused, or did not acknowledge within the client's patience."""


@dataclass
class Client:
    """Retries a request until it is acknowledged: after a connection error, a
    timeout or a 5xx, with exponential backoff; each try goes to any worker of
    the service, as through a Kubernetes Service."""

    http: httpx.AsyncClient
    urls: dict[str, list[str]]
    patience: float
    rng: random.Random = field(default_factory=random.Random)
    # Tries that were not acknowledged, by why.
    retries: Counter[str] = field(default_factory=Counter)

    async def until_acknowledged(
        self,
        service: str,
        method: str,
        path: str,
        judge: Callable[[httpx.Response, bool], Judgement],
        **request: Any,
    ) -> httpx.Response:
        """The acknowledging response. `judge` sees each definite answer and
        whether an earlier try may have been applied without the client knowing."""
        deadline = time.monotonic() + self.patience
        uncertain = False
        delay = BACKOFF_FIRST
        while True:
            url = self.rng.choice(self.urls[service]) + path
            why: str
            try:
                response = await self.http.request(method, url, **request)
            except httpx.TransportError as error:
                uncertain, why = True, type(error).__name__
            else:
                if response.status_code >= 500:
                    # A 503 may come from a command that timed out yet will be applied.
                    uncertain, why = True, str(response.status_code)
                else:
                    judgement = judge(response, uncertain)
                    if judgement == "ack":
                        return response
                    if judgement == "refuse":
                        raise NotAcknowledged(
                            f"{method} {path}: {response.status_code} {response.text[:300]}"
                        )
                    why = f"{response.status_code} not yet"
            self.retries[f"{method} {path.split('/')[1]}: {why}"] += 1
            if time.monotonic() + delay > deadline:
                raise NotAcknowledged(f"{method} {path}: not acknowledged in {self.patience:.0f}s ({why})")
            await asyncio.sleep(delay * self.rng.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_CAP)

    async def get_json(
        self, service: str, path: str, params: dict[str, str] | None = None, try_seconds: float | None = None
    ) -> Any:
        """A read; `try_seconds` for one that gathers a whole list from every worker."""
        extra = {} if try_seconds is None else {"timeout": try_seconds}
        response = await self.until_acknowledged(service, "GET", path, _ok, params=params, **extra)
        return response.json()

    async def list_all(
        self, service: str, path: str, params: dict[str, str] | None = None, try_seconds: float | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paged list, a page of the largest size at a time."""
        items: list[dict[str, Any]] = []
        query = {**(params or {}), "limit": str(PAGE_LIMIT)}
        while True:
            page = await self.get_json(service, path, query, try_seconds=try_seconds)
            items += page["items"]
            if page["next_cursor"] is None:
                return items
            query["cursor"] = page["next_cursor"]

    async def create(self, service: str, path: str, body: dict[str, Any]) -> Any:
        response = await self.until_acknowledged(service, "POST", path, _created, json=body)
        return response.json()


def _ok(response: httpx.Response, _: bool) -> Judgement:
    return "ack" if response.status_code == 200 else "refuse"


def _created(response: httpx.Response, _: bool) -> Judgement:
    return "ack" if response.status_code == 201 else "refuse"


def _captured(response: httpx.Response, _: bool) -> Judgement:
    return "ack" if response.status_code == 202 else "refuse"


def _deal_found(response: httpx.Response, _: bool) -> Judgement:
    if response.status_code != 200:
        return "refuse"
    return "ack" if response.json()["items"] else "retry"


def _closed(response: httpx.Response, uncertain: bool) -> Judgement:
    if response.status_code == 200:
        return "ack"
    # Closing twice is 409: after a try whose fate we do not know, that try closed it.
    if response.status_code == 409 and uncertain:
        return "ack"
    # The deal was found before; a 404 now is a worker answering before it has its
    # state (the report counts these under retries).
    if response.status_code == 404:
        return "retry"
    return "refuse"


@dataclass
class Waits:
    """Seconds from a write's first try until it was acknowledged."""

    capture: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    # From a closer's first look for the deal until sales showed it.
    deal: list[float] = field(default_factory=list)


@dataclass
class Load:
    client: Client
    leads: list[LeadPlan]
    rate: float
    clients: int
    truth: Truth
    console: Console
    waits: Waits = field(default_factory=Waits)
    problems: list[str] = field(default_factory=list)
    # At most this many leads between capture and close (None: no bound): the
    # load then runs at the pipeline's own pace when that is slower than `rate`.
    backlog: int | None = None
    _room: asyncio.Semaphore = field(init=False, repr=False)

    async def run(self, origin: float) -> None:
        """Capture a lead every 1/rate s, and close each deal once sales shows it.
        Capturing and closing are separate clients (a web form, a sales rep), at
        most `clients` of each at a time, so a stalled sales does not hold up
        captures."""
        slots = asyncio.Semaphore(self.clients)
        self._room = asyncio.Semaphore(self.backlog or len(self.leads) or 1)
        to_close: ToClose = asyncio.Queue()
        closers = [asyncio.create_task(self._closer(to_close)) for _ in range(self.clients)]
        captures: set[asyncio.Task[None]] = set()

        def finished(capture: asyncio.Task[None]) -> None:
            captures.discard(capture)
            slots.release()

        reporter = asyncio.create_task(self._progress(origin))
        for lead in self.leads:
            await asyncio.sleep(max(0.0, origin + lead.index / self.rate - time.monotonic()))
            await self._room.acquire()
            await slots.acquire()
            capture = asyncio.create_task(self._capture(lead, to_close))
            captures.add(capture)
            capture.add_done_callback(finished)
        await asyncio.gather(*captures)
        for _ in closers:
            to_close.put_nowait(None)
        await asyncio.gather(*closers)
        reporter.cancel()

    async def _capture(self, lead: LeadPlan, to_close: ToClose) -> None:
        first = time.monotonic()
        body = lead_body(lead, self.truth.campaign_id)
        try:
            response = await self.client.until_acknowledged(
                "marketing", "POST", "/leads", _captured, json=body
            )
        except NotAcknowledged as refused:
            self.problems.append(f"capture of lead {lead.index} ({lead.email}): {refused}")
            self._room.release()
            return
        self.waits.capture.append(time.monotonic() - first)
        lead_id = response.json()["lead_id"]
        self.truth.captured.add(lead_id)
        to_close.put_nowait((lead, lead_id))

    async def _closer(self, to_close: ToClose) -> None:
        while (item := await to_close.get()) is not None:
            lead, lead_id = item
            try:
                looked = time.monotonic()
                response = await self.client.until_acknowledged(
                    "sales", "GET", "/deals", _deal_found, params={"lead_id": lead_id}
                )
                first = time.monotonic()
                self.waits.deal.append(first - looked)
                deal_id = response.json()["items"][0]["deal_id"]
                await self.client.until_acknowledged(
                    "sales", "POST", f"/deals/{deal_id}/close", _closed, json=close_body(lead)
                )
            except NotAcknowledged as refused:
                self.problems.append(f"close of lead {lead_id}: {refused}")
                continue
            finally:
                self._room.release()
            self.waits.close.append(time.monotonic() - first)
            self.truth.closed[lead_id] = lead.outcome

    async def _progress(self, origin: float) -> None:
        while True:
            await asyncio.sleep(10)
            self.console.log(
                f"load {time.monotonic() - origin:5.0f}s: captured {len(self.truth.captured)}"
                f"/{len(self.leads)}, closed {len(self.truth.closed)}, "
                f"retried {sum(self.client.retries.values())}, problems {len(self.problems)}"
            )
