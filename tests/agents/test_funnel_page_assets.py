"""The funnel page's files: served without a token (they hold no data, the page
asks the API with the reader's), Chart.js the pinned, vendored copy."""

import hashlib
import re

import httpx

from services.marketing import views
from services.marketing.app import runtime

CHART_JS = "vendor/chart.js-4.6.1/chart.umd.min.js"
CHART_JS_SHA256 = "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2"


def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=runtime.api)
    return httpx.AsyncClient(transport=transport, base_url="http://leadflow.test")


async def test_the_page_and_its_files_are_served_from_the_worker_without_a_token() -> None:
    async with client() as http:
        page = await http.get("/funnel/page/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        scripts = re.findall(r'src="([^"]+)"', page.text)
        assert scripts == [CHART_JS, "funnel.js"]  # nothing from elsewhere
        for name in (*scripts, "funnel.css"):
            assert (await http.get(f"/funnel/page/{name}")).status_code == 200, name
        # The data is not: it takes a token.
        assert (await http.get("/funnel")).status_code == 401


def test_chart_js_is_the_pinned_release_with_its_licence() -> None:
    vendored = views.STATIC / CHART_JS
    assert hashlib.sha256(vendored.read_bytes()).hexdigest() == CHART_JS_SHA256
    assert vendored.read_text().startswith("/*!\n * Chart.js v4.6.1")
    assert "MIT License" in (vendored.parent / "LICENSE.md").read_text()
