"""`make up`: the whole system on the local broker, shown working.

Starts the broker (unless it runs already), the four services as worker
processes, subscribes a small local webhook receiver to deal.closed and
order.created, sends a small scenario through their HTTP APIs (a campaign's
leads, some qualified, deals won and lost), prints the funnel, the webhooks
received (signatures verified) and where everything is,
then keeps running until Ctrl-C, when it stops the services and the broker it
started. `up.py --stop` stops what an earlier run left behind.

Every API route takes a bearer token: the services trust the local development
issuer, a key pair in .cache/issuer/ made on first use, and the scenario calls
them with its tokens, as `leadflow token` prints them for calls by hand.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from standardwebhooks import Webhook, WebhookVerificationError

from schemas.access import DEFAULT_ISSUER_DIR, LocalIssuer

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
RUN_DIR = ROOT / ".cache" / "up"
SERVICES = {"marketing": 8001, "sales": 8002, "orders": 8003, "webhooks": 8004}
# The scenario's webhook receiver is on this machine: allowed here, refused by default.
SERVICE_ENV = {"webhooks": {"LEADFLOW_ALLOW_PRIVATE_TARGETS": "true", "LEADFLOW_ALLOW_HTTP_TARGETS": "true"}}
# The funnel page (marketing) shows sales' forecast, which the browser reads from sales.
SERVICE_ENV["marketing"] = {"LEADFLOW_FORECAST_URL": "http://127.0.0.1:8002/forecast"}
SERVICE_ENV["sales"] = {"LEADFLOW_CORS_ORIGINS": '["http://127.0.0.1:8001"]'}
RECEIVER_PORT = 8009
# The services trust this issuer; `leadflow token` signs with the same keys.
ISSUER = LocalIssuer(ROOT / DEFAULT_ISSUER_DIR)

console = Console()


def url(service: str) -> str:
    return f"http://127.0.0.1:{SERVICES[service]}"


def broker_running() -> bool:
    return subprocess.run([KAFKA_SH, "status"], capture_output=True).returncode == 0


def start_services() -> dict[str, subprocess.Popen[bytes]]:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    processes = {}
    for service, port in SERVICES.items():
        log = (RUN_DIR / f"{service}.log").open("ab")
        env = {
            **os.environ,
            "LEADFLOW_WEB_PORT": str(port),
            "LEADFLOW_DATA_DIR": str(RUN_DIR / "data"),
            **ISSUER.service_env(),
            **SERVICE_ENV.get(service, {}),
        }
        # Own sessions: Ctrl-C reaches this script only, which stops them in order.
        processes[service] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        (RUN_DIR / f"{service}.pid").write_text(str(processes[service].pid))
    return processes


def wait_ready(processes: dict[str, subprocess.Popen[bytes]], timeout: float = 120) -> None:
    pending = set(processes)
    deadline = time.monotonic() + timeout
    with console.status("waiting for the services to be ready") as status:
        while pending:
            for service in sorted(pending):
                if processes[service].poll() is not None:
                    raise SystemExit(f"{service} exited; see {RUN_DIR / (service + '.log')}")
                try:
                    if httpx.get(f"{url(service)}/readyz", timeout=2).status_code == 200:
                        pending.discard(service)
                        console.log(f"{service} ready on {url(service)}")
                except httpx.HTTPError:
                    pass
            status.update(f"waiting for {', '.join(sorted(pending)) or 'nothing'}")
            if time.monotonic() > deadline:
                raise SystemExit(f"not ready within {timeout:.0f}s: {sorted(pending)}; see {RUN_DIR}")
            time.sleep(0.3)


def stop_services(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for service, process in processes.items():
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        (RUN_DIR / f"{service}.pid").unlink(missing_ok=True)


def stop_leftovers() -> None:
    for service in SERVICES:
        pidfile = RUN_DIR / f"{service}.pid"
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
                console.log(f"stopped {service}")
            except (ProcessLookupError, ValueError):
                pass
            pidfile.unlink()


def eventually(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise SystemExit(f"scenario: {what} did not happen within {timeout:.0f}s")


def post(client: httpx.Client, service: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{url(service)}{path}", json=body)
    if response.status_code >= 400:
        raise SystemExit(f"scenario: POST {path} answered {response.status_code}: {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


def lead(email: str, name: str, title: str, company: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "channel": "event",
        "contact": {"email": email, "name": name, "title": title},
        "company": company,
        "consent": True,
        **extra,
    }


def scenario(client: httpx.Client, run: str) -> str:
    """An exhibition campaign's leads through the funnel; returns the campaign id."""
    campaign = post(
        client,
        "marketing",
        "/campaigns",
        {
            "name": f"Logistics Expo ({run})",
            "channel": "event",
            "budget": {"amount": "12000.00", "currency": "EUR"},
            "starts_on": "2026-11-01",
            "ends_on": "2026-12-31",
            "target": {"industries": ["logistics", "software"], "countries": ["DE", "FR", "NL"]},
        },
    )
    cid: str = campaign["campaign_id"]
    acme = {"name": "Acme Freight", "industry": "logistics", "size": 800, "country": "DE"}
    globex = {"name": "Globex", "industry": "software", "size": 220, "country": "FR"}
    initech = {"name": "Initech", "industry": "software", "size": 45, "country": "NL"}
    umbrella = {"name": "Umbrella", "industry": "retail", "size": 30, "country": "US"}
    captures = [
        lead(f"ana.ruiz.{run}@acme-freight.de", "Ana Ruiz", "CTO", acme, intent="demo_request"),
        lead(
            f"ben.okafor.{run}@globex.fr", "Ben Okafor", "Head of Sales Ops", globex, intent="contact_sales"
        ),
        lead(f"chloe.martin.{run}@initech.nl", "Chloe Martin", "Operations Manager", initech),
        lead(f"dan.wu.{run}@umbrella.com", "Dan Wu", "Analyst", umbrella),
        lead(f"eve.{run}@gmail.com", "Eve", "Founder", umbrella, intent="demo_request"),
        lead(
            f"femi.adeyemi.{run}@acme-freight.de", "Femi Adeyemi", "VP Logistics", acme, intent="demo_request"
        ),
        # The same person again, from the web: engagement, not a second lead.
        {**lead(f"Ana.Ruiz.{run}@acme-freight.de", "Ana Ruiz", "CTO", acme), "channel": "web"},
    ]
    leads = [post(client, "marketing", "/leads", {**c, "campaign_id": cid}) for c in captures]
    # Chloe engages until fit plus engagement reaches the threshold.
    chloe = leads[2]["lead_id"]
    for activity in ("webinar_attended", "content_download", "pricing_page_view", "demo_request"):
        post(client, "marketing", f"/leads/{chloe}/activities", {"type": activity})

    qualified = [
        lead["lead_id"] for lead in leads[:-1] if lead_status(client, lead["lead_id"]) == "qualified"
    ]
    deals = {lid: deal_of(client, lid) for lid in qualified}
    outcomes = [
        ("won", [{"sku": "LF-CORE", "quantity": 1}, {"sku": "LF-SEAT", "quantity": 20}]),
        ("won", [{"sku": "LF-CORE", "quantity": 1}, {"sku": "LF-ONBOARD", "quantity": 1}]),
        ("lost", "no_budget"),
        ("lost", "not_a_real_lead"),
    ]
    for (lead_id, deal), (outcome, detail) in zip(deals.items(), outcomes, strict=False):
        for stage in ("qualifying", "presenting"):
            post(client, "sales", f"/deals/{deal['deal_id']}/stage", {"stage": stage})
        body: dict[str, Any] = {"outcome": outcome}
        body |= {"lines": detail} if outcome == "won" else {"lost_reason": detail}
        post(client, "sales", f"/deals/{deal['deal_id']}/close", body)
        if outcome == "won":
            eventually(partial(orders_of, client, deal["deal_id"]), f"an order for {lead_id}")
        # Sales' verdict flows back to marketing.
        eventually(partial(closed_in_marketing, client, lead_id), f"{lead_id} closed in marketing")
    return cid


class Receiver:
    """A subscriber's endpoint: keeps what it gets, and checks each signature with the
    standardwebhooks library once it knows its secret (after the test event)."""

    def __init__(self, port: int) -> None:
        self.secret: str | None = None
        self.received: list[tuple[dict[str, Any], bool | None]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                verified = None
                if receiver.secret is not None:
                    try:
                        Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                        verified = True
                    except WebhookVerificationError:
                        verified = False
                receiver.received.append((json.loads(body), verified))
                self.send_response(400 if verified is False else 204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/leadflow"

    def subscribe(self, client: httpx.Client) -> None:
        body = {"url": self.url, "event_types": ["deal.closed", "order.created"], "description": "make up"}
        self.secret = post(client, "webhooks", "/subscriptions", body)["secret"]


def show_webhooks(receiver: Receiver, campaign_id: str) -> None:
    def of_campaign(event: dict[str, Any]) -> bool:
        data = event.get("data", {})
        return bool(data.get("campaign_id") == campaign_id or event["type"] == "order.created")

    wanted = [(e, v) for e, v in receiver.received if e["type"] in ("deal.closed", "order.created")]
    table = Table(title=f"Webhooks received at {receiver.url}")
    for column in ("webhook-id (event id)", "type", "lead", "signature"):
        table.add_column(column)
    for event, verified in wanted:
        if of_campaign(event):
            table.add_row(event["id"], event["type"], event["subject"], "verified" if verified else "BAD")
    console.print(table)


def closed_in_marketing(client: httpx.Client, lead_id: str) -> bool:
    return lead_status(client, lead_id) != "qualified"


def lead_status(client: httpx.Client, lead_id: str) -> str:
    status: str = client.get(f"{url('marketing')}/leads/{lead_id}").json()["status"]
    return status


def deals_of(client: httpx.Client, lead_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(f"{url('sales')}/deals", params={"lead_id": lead_id}).json()[
        "items"
    ]
    return items


def deal_of(client: httpx.Client, lead_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        items = deals_of(client, lead_id)
        return items[0] if items else None

    found: dict[str, Any] = eventually(find, f"a deal for lead {lead_id}")
    return found


def orders_of(client: httpx.Client, deal_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(f"{url('orders')}/orders", params={"deal_id": deal_id}).json()[
        "items"
    ]
    return items


def show_funnel(client: httpx.Client, campaign_id: str) -> None:
    leads = client.get(f"{url('marketing')}/leads", params={"campaign_id": campaign_id}).json()["items"]
    lead_ids = {lead["lead_id"] for lead in leads}
    # One key read each: the scenario's leads only, however many a kept broker holds.
    deals = [d for lead_id in lead_ids for d in deals_of(client, lead_id)]
    orders = [o for d in deals for o in orders_of(client, d["deal_id"])]
    status = Counter(lead["status"] for lead in leads)
    stages = Counter(d["stage"] for d in deals)
    handed_over = sum(1 for lead in leads if lead["qualified_at"])

    funnel = Table(title="Funnel for the scenario's campaign", show_lines=False)
    funnel.add_column("step")
    funnel.add_column("count", justify="right")
    funnel.add_row("leads captured", str(len(leads)))
    funnel.add_row("  duplicate captures (engagement)", str(sum(lead["captures"] - 1 for lead in leads)))
    funnel.add_row("  nurturing", str(status["nurturing"]))
    funnel.add_row("  disqualified", str(status["disqualified"]))
    funnel.add_row("qualified, handed to sales", str(handed_over))
    funnel.add_row("deals opened", str(len(deals)))
    funnel.add_row("  won", str(stages["won"]))
    funnel.add_row("  lost", str(stages["lost"]))
    funnel.add_row("  recycled (not a real lead)", str(status["recycled"]))
    funnel.add_row("orders", str(len(orders)))
    funnel.add_row("order value", ", ".join(f"{o['total']} {o['currency']}" for o in orders) or "-")
    console.print(funnel)

    performance = client.get(f"{url('marketing')}/campaigns/{campaign_id}/performance")
    if performance.status_code == 200:
        console.print("campaign performance:", performance.json())


def show_urls() -> None:
    console.print("\n[bold]Where everything is[/bold]")
    for service in SERVICES:
        base = url(service)
        console.print(
            f"  {service:<10} API {base}  docs {base}/docs  metrics {base}/metrics  ready {base}/readyz",
            soft_wrap=True,
        )
    console.print(f"  {'kafka':<10} 127.0.0.1:9092   logs {RUN_DIR}", soft_wrap=True)
    # A read-only token in the #fragment: the browser never sends it to a server, and
    # the page moves it out of the address into the tab's sessionStorage at once.
    page_token = ISSUER.token(subject="funnel-page", scopes=["campaigns:read", "deals:read"])
    console.print("\n[bold]The funnel page[/bold] (live; this link carries a read-only token, valid 12 h):")
    console.print(f"  {url('marketing')}/funnel/page/#token={page_token}", markup=False, soft_wrap=True)
    console.print("\n[bold]Calling the API by hand[/bold] (every route but /healthz, /readyz and /metrics)")
    console.print(
        "  The services trust the local development issuer's tokens "
        f"(keys in {ISSUER.folder.relative_to(ROOT)}/); this prints one with every scope, valid 12 h:",
        soft_wrap=True,
    )
    for line in (
        "TOKEN=$(.venv/bin/leadflow token)",
        f'curl -H "Authorization: Bearer $TOKEN" "{url("marketing")}/leads?limit=5"',
        f'curl -H "Authorization: Bearer $(.venv/bin/leadflow token)" "{url("sales")}/deals?limit=5"',
        "LEADFLOW_TOKEN=$TOKEN .venv/bin/python -m services.marketing.importer "
        "services/marketing/examples/expo-2026.csv",
    ):
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        "  Fewer scopes: .venv/bin/leadflow token --scopes leads:read deals:read (--help lists them)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stop", action="store_true", help="stop services an earlier run left behind")
    args = parser.parse_args()
    if args.stop:
        stop_leftovers()
        return
    stop_leftovers()
    started_broker = not broker_running()
    subprocess.run([KAFKA_SH, "start"], check=True)
    processes = start_services()
    try:
        wait_ready(processes)
        receiver = Receiver(RECEIVER_PORT)
        with httpx.Client(timeout=30, auth=ISSUER.auth(subject="make-up-scenario")) as client:
            run = time.strftime("%H%M%S")
            receiver.subscribe(client)
            with console.status("running the scenario"):
                campaign_id = scenario(client, run)
                # Two won deals: two deal.closed and two order.created at least.
                eventually(lambda: sum(1 for _, v in receiver.received if v) >= 4, "webhooks delivered")
            show_funnel(client, campaign_id)
            show_webhooks(receiver, campaign_id)
        show_urls()
        console.print("[bold]Leadflow is up.[/bold] Ctrl-C stops the services and the broker.")
        while all(p.poll() is None for p in processes.values()):
            time.sleep(1)
        console.print("[red]a service exited[/red]; see " + str(RUN_DIR))
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        stop_services(processes)
        if started_broker:
            subprocess.run([KAFKA_SH, "stop"], check=False)


if __name__ == "__main__":
    main()
