"""Import leads from a CSV file: an exhibition's badge scans, a bought or partner list.

    LEADFLOW_TOKEN=<bearer token> python -m services.marketing.importer FILE [--url URL]
        [--campaign ID] [--channel CHANNEL] [--report PATH] [--token TOKEN]

Each row is posted to the marketing service's POST /leads, so an imported lead
is validated, deduplicated and qualified like any other capture: a person
already known is engagement on their lead, not a second lead. Good rows are
imported; bad ones are written to the report (CSV: row, email, field, reason),
`row` being the row's line in FILE as a spreadsheet numbers it (header = 1).

The service takes an OAuth2 bearer token with the scope leads:write, from
$LEADFLOW_TOKEN or --token (the environment keeps it out of the process list); on
a laptop, `LEADFLOW_TOKEN=$(.venv/bin/leadflow token)` gives one that the services
of `make up` trust.

Columns, by header name (any order and case; others are ignored): email, name,
company (required); title, phone, industry, size, country, consent, intent, and
per row channel and campaign_id, which override --channel and --campaign.
consent is yes/no (also y/n, true/false, 1/0, x for ticked; blank is no).
Delimiter ',' ';' or tab, UTF-8 with or without BOM.

Exit status: 0 every row imported, 1 some rows failed (see the report),
2 the file or the service could not be used (no token, or one it refused).

services/marketing/examples/expo-2026.csv is a sample; two of its rows are bad
on purpose, to show the report.
"""

import argparse
import csv
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from schemas.events import Channel

# CSV column -> where it goes in the POST /leads body.
FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("contact", "email"),
    "name": ("contact", "name"),
    "title": ("contact", "title"),
    "phone": ("contact", "phone"),
    "company": ("company", "name"),
    "industry": ("company", "industry"),
    "size": ("company", "size"),
    "country": ("company", "country"),
    "consent": ("consent",),
    "intent": ("intent",),
    "channel": ("channel",),
    "campaign_id": ("campaign_id",),
}
REQUIRED = ("email", "name", "company")
# Header names lists come with, beyond the column names themselves.
ALIASES = {
    "e-mail": "email",
    "email_address": "email",
    "full_name": "name",
    "job_title": "title",
    "company_name": "company",
    "organisation": "company",
    "organization": "company",
    "employees": "size",
    "company_size": "size",
    "campaign": "campaign_id",
}
YES = {"yes", "y", "true", "1", "x"}
NO = {"no", "n", "false", "0", ""}

ATTEMPTS = 5  # per row, while the service answers 503 (a rebalance) or not at all
TOKEN_ENV = "LEADFLOW_TOKEN"


@dataclass(frozen=True)
class RowError:
    row: int
    email: str
    field: str
    reason: str


@dataclass
class Summary:
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def failed_rows(self) -> int:
        return len({e.row for e in self.errors})


class ImportAborted(Exception):
    """The file or the service cannot be used at all (exit status 2)."""


def column_of(header: str) -> str | None:
    name = header.strip().lower().replace(" ", "_")
    name = ALIASES.get(name, name)
    return name if name in FIELDS else None


def parse_row(
    row: dict[str, str], channel: str, campaign_id: str | None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The POST /leads body for a CSV row (keys are column names), and what is wrong
    with it that the service need not be asked about."""
    values = {k: (v or "").strip() for k, v in row.items()}
    problems: list[tuple[str, str]] = []
    body: dict[str, Any] = {
        "channel": values.get("channel") or channel,
        "campaign_id": values.get("campaign_id") or campaign_id,
        "contact": {},
        "company": {},
    }
    for column in ("email", "name", "title", "phone", "company", "industry", "country"):
        value = values.get(column, "")
        if value or column in REQUIRED:
            group, key = FIELDS[column]
            body[group][key] = value
    size = values.get("size", "").replace(",", "").replace(" ", "")
    if size:
        if size.isdigit():
            body["company"]["size"] = int(size)
        else:
            problems.append(("size", f"size must be a whole number of employees, not {values['size']!r}"))
    consent = values.get("consent", "").lower()
    if consent in YES:
        body["consent"] = True
    elif consent in NO:
        body["consent"] = False
    else:
        problems.append(("consent", f"consent must be yes or no, not {values['consent']!r}"))
    if values.get("intent"):
        body["intent"] = values["intent"]
    return body, problems


def errors_of(answer: httpx.Response) -> list[tuple[str, str]]:
    """(column, reason) for each problem the service named in its refusal."""
    try:
        detail = answer.json().get("detail")
    except ValueError:
        detail = None
    if answer.status_code != 422 or not isinstance(detail, list):
        return [("", f"HTTP {answer.status_code}: {answer.text[:300]}")]
    by_path = {path: column for column, path in FIELDS.items()}
    found = []
    for item in detail:
        loc = tuple(str(part) for part in item.get("loc", ())[1:])  # drop "body"
        column = by_path.get(loc, ".".join(loc))
        found.append((column, str(item.get("msg", "refused"))))
    return found


def post(client: httpx.Client, url: str, body: dict[str, Any]) -> httpx.Response:
    """POST one lead, trying again while the service is briefly unavailable."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            answer = client.post(f"{url}/leads", json=body)
        except httpx.TransportError as unreachable:
            if attempt == ATTEMPTS:
                raise ImportAborted(f"marketing service at {url} does not answer: {unreachable}") from None
        else:
            if answer.status_code in (401, 403):
                # The token, not the row: every other row would be refused alike.
                raise ImportAborted(f"marketing service at {url} refused the token: {refusal(answer)}")
            if answer.status_code != 503 or attempt == ATTEMPTS:
                return answer
        time.sleep(min(attempt, 3))
    raise AssertionError("unreachable")


def refusal(answer: httpx.Response) -> str:
    """The reason a 401 or 403 gives (its problem's msg), else the status."""
    try:
        detail = answer.json().get("detail")
        reason = str(detail[0]["msg"]) if isinstance(detail, list) else str(detail)
    except (ValueError, AttributeError, LookupError, TypeError):
        reason = answer.text[:300]
    return f"HTTP {answer.status_code}: {reason}"


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row by column name) for each data row of the CSV file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as unreadable:
        raise ImportAborted(f"cannot read {path}: {unreadable}") from unreadable
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(text.splitlines(keepends=True), dialect)
    header = next(reader, None)
    if header is None:
        raise ImportAborted(f"{path} is empty")
    columns = [column_of(h) for h in header]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ImportAborted(f"{path} has no column {', '.join(missing)} (header: {', '.join(header)})")
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        row = {c: v for c, v in zip(columns, cells, strict=False) if c is not None}
        yield reader.line_num, row


def write_report(path: Path, errors: Sequence[RowError]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["row", "email", "field", "reason"])
        for error in errors:
            writer.writerow([error.row, error.email, error.field, error.reason])


def run(path: Path, url: str, channel: str, campaign_id: str | None, console: Console, token: str) -> Summary:
    rows = list(read_rows(path))
    summary = Summary(rows=len(rows))
    progress = Progress(
        TextColumn("[bold]importing[/] {task.fields[name]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[created]} new[/] [cyan]{task.fields[duplicates]} known[/]"),
        TextColumn("[red]{task.fields[failed]} failed[/]"),
        TimeRemainingColumn(),
        console=console,
    )
    headers = {"Authorization": f"Bearer {token}"}
    with progress, httpx.Client(timeout=30, headers=headers) as client:
        task = progress.add_task("import", total=len(rows), name=path.name, created=0, duplicates=0, failed=0)
        for line, row in rows:
            email = row.get("email", "").strip()
            body, problems = parse_row(row, channel, campaign_id)
            if not problems:
                answer = post(client, url, body)
                if answer.status_code == 202:
                    if answer.json().get("duplicate"):
                        summary.duplicates += 1
                    else:
                        summary.created += 1
                else:
                    problems = errors_of(answer)
            summary.errors += [RowError(line, email, column, reason) for column, reason in problems]
            progress.update(
                task,
                advance=1,
                created=summary.created,
                duplicates=summary.duplicates,
                failed=summary.failed_rows,
            )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.marketing.importer",
        description="Import leads from a CSV file into the marketing service.",
    )
    parser.add_argument("file", type=Path, help="CSV file with a header row")
    parser.add_argument("--url", default="http://127.0.0.1:8001", help="marketing service base URL")
    parser.add_argument("--campaign", help="campaign_id for rows without their own")
    parser.add_argument(
        "--channel",
        default=Channel.EVENT.value,
        choices=[c.value for c in Channel],
        help="channel for rows without their own (default: event)",
    )
    parser.add_argument("--report", type=Path, help="where the error report goes (default: FILE-errors.csv)")
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"OAuth2 bearer token with the scope leads:write (default: ${TOKEN_ENV}, which keeps it out "
        "of the process list; locally: $(.venv/bin/leadflow token))",
    )
    args = parser.parse_args(argv)
    token = (args.token or "").strip()
    if token.lower().startswith("bearer "):
        token = token[len("bearer ") :].strip()
    if not token:
        parser.error(
            f"a bearer token is required: set {TOKEN_ENV} or pass --token "
            f"(for the services of `make up`: {TOKEN_ENV}=$(.venv/bin/leadflow token))"
        )
    console = Console(stderr=True)
    report: Path = args.report or Path(f"{args.file.stem}-errors.csv")
    try:
        summary = run(args.file, args.url.rstrip("/"), args.channel, args.campaign, console, token)
    except ImportAborted as aborted:
        console.print(f"[red]import aborted:[/] {aborted}")
        return 2
    console.print(
        f"{summary.rows} rows: [green]{summary.created} new leads[/], "
        f"[cyan]{summary.duplicates} already known (engagement)[/], "
        f"[red]{summary.failed_rows} failed[/]"
    )
    if summary.errors:
        write_report(report, summary.errors)
        console.print(f"error report: {report}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
