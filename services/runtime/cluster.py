"""A service's workers as the partition assignor sees them.

Each key (a lead id) lives on exactly one worker: the one assigned its partition.
A request about a key is answered by that worker; any other worker forwards it
there. A list is gathered from every worker, each answering for its own
partitions. With one worker all of this is local.
"""

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import faust
import httpx
from fastapi import Request, Response
from pydantic import BaseModel
from yarl import URL

from services.runtime.auth import caller_token
from services.runtime.pages import Page, PageQuery, local_page, merge
from services.runtime.tables import ModelTable

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

FORWARDED = "x-leadflow-forwarded"
LOCAL_ONLY = "x-leadflow-local"
_HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding"}


class Unavailable(Exception):
    """No worker can answer for the key right now (a rebalance is under way)."""


class Forwarded(Exception):
    """Carries the owner's answer; the web layer returns it as it is."""

    def __init__(self, response: Response) -> None:
        super().__init__("forwarded")
        self.response = response


class Cluster:
    def __init__(self, app: faust.App, own_url: str, forward_timeout: float) -> None:
        self.app = app
        self.own_url = URL(own_url)
        self._timeout = forward_timeout
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def is_self(self, url: URL) -> bool:
        return (url.host, url.port) == (self.own_url.host, self.own_url.port)

    def check_serving(self) -> None:
        """Raise Unavailable unless this worker's tables can answer for its partitions."""
        if self.app.rebalancing:
            # Partitions are moving and tables recovering: an answer now could be a
            # false "not found" from a half-restored table.
            raise Unavailable("partitions are being reassigned; retry")
        if self.app.should_stop:
            # Stopping (SIGTERM): its HTTP server still finishes what it has, but
            # its partitions are about to go to another worker; don't answer for them.
            raise Unavailable("the worker is stopping; retry")

    def owner(self, table: ModelTable[Any], key: str) -> URL:
        self.check_serving()
        try:
            return self.app.router.key_store(table.name, key)
        except KeyError as unassigned:
            raise Unavailable(f"no worker holds the partition of {key!r} yet") from unassigned

    def owns(self, table: ModelTable[Any], key: str) -> bool:
        """Whether this worker answers for `key`."""
        return self.is_self(self.owner(table, key))

    async def fetch(self, table: ModelTable[Any], key: str, path: str) -> bytes | None:
        """GET `path` from the worker owning `key`: the body, or None for a 404."""
        return await self._get(self.owner(table, key), path)

    async def gather(self, table: ModelTable[Any], path: str) -> list[bytes]:
        """GET `path` from every other worker holding partitions of `table`: their bodies."""
        peers = self.peers(table)
        bodies = await asyncio.gather(*(self._get(peer, path) for peer in peers))
        for peer, body in zip(peers, bodies, strict=True):
            if body is None:
                raise Unavailable(f"worker {peer} answered 404 for {path}")
        return [body for body in bodies if body is not None]

    def whole(self, table: ModelTable[Any], shares: Iterable[Iterable[int]]) -> None:
        """Return if the workers' `shares` (the partitions each answered for) hold each
        partition of `table` exactly once; raise Unavailable if not (workers that
        disagree about who holds what while partitions move)."""
        seen: list[int] = [p for share in shares for p in share]
        every = range(self.app.conf.topic_partitions)
        if sorted(seen) != list(every):
            missing = sorted(set(every) - set(seen))
            twice = sorted({p for p in seen if seen.count(p) > 1})
            raise Unavailable(f"workers' partitions do not add up (missing {missing}, twice {twice}); retry")

    async def _get(self, url: URL, path: str) -> bytes | None:
        # On the caller's behalf: the other worker checks the caller's token too.
        token = caller_token.get()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            answer = await self.client.get(str(url.with_path(path)), headers=headers)
        except httpx.HTTPError as unreachable:
            raise Unavailable(f"worker {url} did not answer: {unreachable}") from unreachable
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise Unavailable(f"worker {url} answered {answer.status_code} for {path}")
        return answer.content

    async def ensure_local(self, request: Request, table: ModelTable[Any], key: str) -> None:
        """Return when this worker owns `key`; otherwise raise Forwarded with the owner's answer."""
        owner = self.owner(table, key)
        if self.is_self(owner):
            return
        if request.headers.get(FORWARDED):
            # Ownership moved while the request was in flight; don't bounce it around.
            raise Unavailable("partition ownership is moving; retry")
        raise Forwarded(await self._send(request, owner, {FORWARDED: "1"}))

    def local_items(self, table: ModelTable[M]) -> Iterator[tuple[str, M]]:
        """The table's entries whose partitions this worker is active for (not standby)."""
        for key in self.local_keys(table):
            value = table.get(key)
            if value is not None:
                yield key, value

    def active_partitions(self, table: ModelTable[Any]) -> frozenset[int]:
        """The partitions of `table` this worker is active for (not standby)."""
        topic = table.changelog_topic
        return frozenset(tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic)

    def local_keys(self, table: ModelTable[Any]) -> Iterator[str]:
        """The table's keys whose partitions this worker is active for; no value decoded."""
        topic = table.changelog_topic
        actives = self.active_partitions(table)
        for key in table:
            if self.app.producer.key_partition(topic, key.encode()).partition in actives:
                yield key

    async def page(
        self,
        request: Request,
        table: ModelTable[M],
        query: PageQuery,
        item: Callable[[M], dict[str, Any] | None],
        *,
        key_field: str,
    ) -> Page[dict[str, Any]]:
        """A page of the list `request` asks for: this worker's entries and every other
        worker's answer to the same request, merged in key order. `item` renders an
        entry or leaves it out; `key_field` names the table key in a rendered item."""
        self.check_serving()
        pages = [local_page(self.local_keys(table), table.get, item, query)]
        for body in await self._from_peers(request, table):
            pages.append(([(i[key_field], i) for i in body["items"]], body["next_cursor"] is not None))
        return merge(pages, query)

    def peers(self, table: ModelTable[Any]) -> list[URL]:
        hosts: Iterable[str] = self.app.router.table_metadata(table.name).keys()
        return [URL(h) for h in hosts if not self.is_self(URL(h))]

    async def _from_peers(self, request: Request, table: ModelTable[Any]) -> list[dict[str, Any]]:
        """What the other workers answer to this same request, each for its own partitions."""
        if request.headers.get(LOCAL_ONLY):
            return []
        peers = self.peers(table)
        answers = await asyncio.gather(*(self._send(request, peer, {LOCAL_ONLY: "1"}) for peer in peers))
        bodies: list[dict[str, Any]] = []
        for peer, answer in zip(peers, answers, strict=True):
            if answer.status_code != 200:
                raise Unavailable(f"worker {peer} answered {answer.status_code}")
            bodies.append(json.loads(bytes(answer.body)))
        return bodies

    async def _send(self, request: Request, url: URL, extra: dict[str, str]) -> Response:
        target = str(request.url.replace(scheme=url.scheme, netloc=f"{url.host}:{url.port}"))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        try:
            answer = await self.client.request(
                request.method, target, headers={**headers, **extra}, content=await request.body()
            )
        except httpx.HTTPError as unreachable:
            raise Unavailable(f"worker {url} did not answer: {unreachable}") from unreachable
        except asyncio.CancelledError as stopping:
            # This worker's HTTP server is stopping (see Commands.ask): a 503, not a 500.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            raise Unavailable("the worker is stopping; retry") from stopping
        return Response(
            content=answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type"),
        )
