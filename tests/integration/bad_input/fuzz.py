"""Schemathesis against a running service's own OpenAPI document.

Every operation is fuzzed with valid and invalid input (stateless), then the
service is walked as a state machine along the links schemathesis infers from
the document (a created campaign's id into GET /campaigns/{campaign_id}, ...).
Path ids are swapped half the time for ids that exist (see journey.seed):
random ids only ever meet the 404 in front of the handlers.

Nothing raises while fuzzing: each request is counted and each problem kept,
so a run says how many requests it made and everything that went wrong.
What counts as wrong: a 5xx, a request that got no answer, or a response
that does not conform to the document (status code, content type, headers,
body schema). Requests the service refuses although the document allows them
(or the reverse) are kept as notes: they measure how exactly the document
describes the input, not whether the service answers what it promises.
"""

import contextlib
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given
from hypothesis.errors import Flaky, Unsatisfiable
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import APIOperation, Case, GenerationMode, Response
from schemathesis.core.failures import AcceptedNegativeData, FailureGroup
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.system import ISSUER

# What the service promises in its document, and what only measures the document.
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]
NOTES = (RejectedPositiveData, AcceptedNegativeData)

# Findings that are known bugs, with where they are: reported, not failed on, and
# failed on once they stop happening so the entry goes. None today.
KNOWN: dict[tuple[str, str], str] = {}

REQUEST_TIMEOUT = 30.0
# The body of uvicorn's own 400 for a request its HTTP parser cannot read.
MALFORMED_HTTP = b"Invalid HTTP request received."

AnyCase = Case[Any]
Operation = APIOperation[Any, Any, Any, Any]


@dataclass
class Finding:
    operation: str
    kind: str  # "5xx", "violation", "no answer", "note" or "known"
    title: str
    status: int | None
    request: str  # a curl command that repeats it
    response: str
    detail: str
    count: int = 1

    @property
    def key(self) -> tuple[str, str, str, int | None]:
        return (self.operation, self.kind, self.title, self.status)

    def describe(self) -> str:
        return (
            f"[{self.kind}] {self.operation} -> {self.status}: {self.title} (x{self.count})\n"
            f"    {self.request}\n    response: {self.response[:400]}\n    {self.detail[:600]}"
        )


@dataclass
class FuzzResult:
    service: str
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    findings: dict[tuple[str, str, str, int | None], Finding] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def of_kind(self, *kinds: str) -> list[Finding]:
        return [f for f in self.findings.values() if f.kind in kinds]

    def count(self, *kinds: str) -> int:
        return sum(f.count for f in self.of_kind(*kinds))

    @property
    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500)

    def answered(self, operation: str, statuses: Iterable[int]) -> int:
        wanted = set(statuses)
        return sum(n for (op, status), n in self.statuses.items() if op == operation and status in wanted)

    def keep(self, finding: Finding) -> None:
        if finding.key in self.findings:
            self.findings[finding.key].count += 1
        else:
            self.findings[finding.key] = finding

    def record(self, case: AnyCase, response: Response, base_url: str) -> None:
        operation = case.operation.label
        self.statuses[(operation, response.status_code)] += 1
        if response.status_code >= 500:
            # A server error is the finding, whatever else its body breaks.
            self._keep(case, response, base_url, "5xx", "Server error", "")
            return
        if response.status_code == 400 and response.content == MALFORMED_HTTP:
            # uvicorn's HTTP parser refused a request it could not parse (a header
            # name like `transfer-encoding;`): the application never saw it, and no
            # route's document can describe it. A clear 4xx is the right answer.
            self._keep(case, response, base_url, "note", "Malformed HTTP request refused by the server", "")
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                known = KNOWN.get((operation, failure.title))
                kind = "known" if known else "note" if isinstance(failure, NOTES) else "violation"
                self._keep(case, response, base_url, kind, failure.title, known or failure.message)

    def _keep(
        self, case: AnyCase, response: Response, base_url: str, kind: str, title: str, detail: str
    ) -> None:
        self.keep(
            Finding(
                operation=case.operation.label,
                kind=kind,
                title=title,
                status=response.status_code,
                request=case.as_curl_command(base_url=base_url),
                response=response.text[:2000],
                detail=detail,
            )
        )

    def no_answer(self, case: AnyCase, error: BaseException, base_url: str) -> None:
        self.keep(
            Finding(
                operation=case.operation.label,
                kind="no answer",
                title=type(error).__name__,
                status=None,
                request=case.as_curl_command(base_url=base_url),
                response="",
                detail=str(error),
            )
        )

    def summary(self) -> str:
        lines = [
            f"{self.service}: {self.requests} requests, {self.server_errors} 5xx, "
            f"{self.count('violation')} violations, {self.count('no answer')} unanswered, "
            f"{self.count('known')} known (runtime), {self.count('note')} notes"
        ]
        by_status = Counter[int]()
        for (_, status), n in self.statuses.items():
            by_status[status] += n
        lines.append("  statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(by_status.items())))
        for kind in ("5xx", "no answer", "violation", "known", "note"):
            lines += ["  " + f.describe().replace("\n", "\n  ") for f in self.of_kind(kind)]
        return "\n".join(lines)


class Fuzzer:
    """Fuzzes one service at `url`; `known_ids` maps a path parameter to ids that exist."""

    def __init__(self, service: str, url: str, known_ids: dict[str, list[str]], seed: int = 0) -> None:
        self.url = url
        self.known_ids = known_ids
        self.random = random.Random(seed)
        self.schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        self.result = FuzzResult(service)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {ISSUER.token(subject='fuzzer')}"

    @property
    def operations(self) -> list[Operation]:
        # An operation the document describes wrongly fails the whole run, loudly.
        return [result.ok() for result in self.schema.get_all_operations()]  # type: ignore[union-attr]

    def aim(self, case: AnyCase) -> None:
        """Half the time, a path id that exists instead of a generated one."""
        for name in list(case.path_parameters or {}):
            ids = self.known_ids.get(name)
            if ids and self.random.random() < 0.5:
                case.path_parameters[name] = self.random.choice(ids)

    def send(self, case: AnyCase) -> Response | None:
        try:
            response = case.call(base_url=self.url, session=self.session, timeout=REQUEST_TIMEOUT)
        except requests.RequestException as error:
            self.result.no_answer(case, error, self.url)
            return None
        self.result.record(case, response, self.url)
        return response

    def stateless(self, examples: int) -> None:
        """`examples` generated cases for each operation, valid and invalid input each."""
        for operation in self.operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                self._run(operation, mode, examples)

    def _run(self, operation: Operation, mode: GenerationMode, examples: int) -> None:
        @given(case=operation.as_strategy(generation_mode=mode))
        @_settings(examples)
        def fuzz(case: AnyCase) -> None:
            self.aim(case)
            self.send(case)

        # Nothing invalid to say to an operation without input, such as GET /healthz.
        with contextlib.suppress(Unsatisfiable):
            fuzz()

    def stateful(self, scenarios: int, steps: int) -> None:
        """Scenarios of up to `steps` calls along the inferred links."""
        fuzzer = self
        machine: Any = self.schema.as_state_machine()

        class Walk(machine):  # type: ignore[misc]
            def get_call_kwargs(self, case: AnyCase) -> dict[str, Any]:
                return {"base_url": fuzzer.url, "session": fuzzer.session, "timeout": REQUEST_TIMEOUT}

            def before_call(self, case: AnyCase) -> None:
                fuzzer.aim(case)

            def call(self, case: AnyCase, **kwargs: Any) -> Response:
                try:
                    response: Response = case.call(**kwargs)
                except requests.RequestException as error:
                    fuzzer.result.no_answer(case, error, fuzzer.url)
                    raise
                return response

            def validate_response(self, response: Response, case: AnyCase, *args: Any, **kwargs: Any) -> None:
                fuzzer.result.record(case, response, fuzzer.url)

        # The service's state is outside Hypothesis: a step that answered 200 may answer
        # 409 when replayed, which Hypothesis reports as flaky. Schemathesis' own runner
        # starts the walk again then; so do we, until enough steps were made.
        wanted = self.result.requests + scenarios * steps
        for _ in range(20):
            try:
                run_state_machine_as_test(Walk, settings=_settings(scenarios, stateful_step_count=steps))
            except Flaky:
                pass
            except requests.RequestException:
                pass  # kept as "no answer" by Walk.call
            if self.result.requests >= wanted:
                return


def _settings(examples: int, **extra: Any) -> hypothesis.settings:
    # No shrinking and no example database: every case is a fresh request, counted.
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        **extra,
    )


def fuzz_service(
    service: str,
    url: str,
    known_ids: dict[str, list[str]],
    *,
    requests_wanted: int,
    seed: int = 0,
) -> FuzzResult:
    """Fuzz until at least `requests_wanted` requests were made: two thirds stateless
    across all operations, the rest in state-machine scenarios."""
    fuzzer = Fuzzer(service, url, known_ids, seed)
    with_input = [op for op in fuzzer.operations if op.path_parameters or op.query or op.body]
    steps = 10
    for _ in range(10):
        missing = requests_wanted - fuzzer.result.requests
        if missing <= 0:
            break
        fuzzer.stateless(max(5, math.ceil(missing * 2 / 3 / (2 * max(1, len(with_input))))))
        missing = max(requests_wanted - fuzzer.result.requests, requests_wanted // 3)
        fuzzer.stateful(max(5, math.ceil(missing / steps)), steps)
    return fuzzer.result
