"""The receiver schemas/README.md shows works as it says: it accepts a signed delivery
and refuses a tampered one."""

import json
import re
import threading
import time
from datetime import UTC, datetime

import httpx

from services.webhooks import sending
from services.webhooks.domain.subscriptions import new_secret
from tests.system import PORT_BASE, ROOT

PORT = PORT_BASE + 106


def test_the_readme_receiver_verifies_signatures() -> None:
    readme = (ROOT / "schemas" / "README.md").read_text()
    found = re.search(r"## Webhooks: a receiver.*?```python\n(.*?)```", readme, re.DOTALL)
    assert found is not None
    secret = new_secret()
    code = found.group(1).replace('"whsec_..."', repr(secret)).replace('("", 8080)', f'("127.0.0.1", {PORT})')
    assert len([line for line in code.splitlines() if line.strip()]) <= 15
    threading.Thread(target=exec, args=(code, {"__name__": "receiver"}), daemon=True).start()
    body = json.dumps({"id": "e-1", "type": "deal.closed", "subject": "lead-1"}).encode()
    headers = sending.signed_headers([secret], "e-1", datetime.now(UTC), body)
    url = f"http://127.0.0.1:{PORT}/"
    for _ in range(50):
        try:
            answer = httpx.post(url, content=body, headers=headers)
            break
        except httpx.ConnectError:
            time.sleep(0.1)
    assert answer.status_code == 204
    assert httpx.post(url, content=body.replace(b"lead-1", b"lead-2"), headers=headers).status_code == 400
    stale = {**headers, "webhook-timestamp": str(int(time.time()) - 600)}
    assert httpx.post(url, content=body, headers=stale).status_code == 400
