"""The CSV importer's reading of rows and of the service's refusals (no service needed)."""

from pathlib import Path

import httpx
import pytest

from services.marketing.importer import (
    ImportAborted,
    RowError,
    errors_of,
    main,
    parse_row,
    post,
    read_rows,
    write_report,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "services" / "marketing" / "examples" / "expo-2026.csv"


def test_a_row_becomes_a_lead_request() -> None:
    row = {
        "email": " ana@acme.io ",
        "name": "Ana Ruiz",
        "title": "CTO",
        "phone": "",
        "company": "Acme",
        "industry": "Software",
        "size": "1,200",
        "country": "de",
        "consent": "Yes",
        "intent": "demo_request",
    }
    body, problems = parse_row(row, "event", "expo")
    assert problems == []
    assert body == {
        "channel": "event",
        "campaign_id": "expo",
        "contact": {"email": "ana@acme.io", "name": "Ana Ruiz", "title": "CTO"},
        "company": {"name": "Acme", "industry": "Software", "size": 1200, "country": "de"},
        "consent": True,
        "intent": "demo_request",
    }


def test_a_row_may_name_its_own_channel_and_campaign_and_blank_consent_is_no() -> None:
    row = {"email": "a@b.io", "name": "A", "company": "B", "channel": "referral", "campaign_id": "partners"}
    body, problems = parse_row(row, "event", "expo")
    assert (body["channel"], body["campaign_id"], body["consent"], problems) == (
        "referral",
        "partners",
        False,
        [],
    )


def test_what_cannot_be_read_is_a_problem_of_its_column() -> None:
    _, problems = parse_row(
        {"email": "a@b.io", "name": "A", "company": "B", "size": "lots", "consent": "maybe"}, "event", None
    )
    assert [column for column, _ in problems] == ["size", "consent"]


def test_the_service_s_refusal_is_reported_by_column() -> None:
    refusal = httpx.Response(
        422,
        json={
            "detail": [
                {"loc": ["body", "contact", "email"], "msg": "value is not a valid email address"},
                {"loc": ["body", "company", "name"], "msg": "String should have at least 1 character"},
                {"loc": ["body", "campaign_id"], "msg": "unknown campaign 'x'"},
            ]
        },
    )
    assert errors_of(refusal) == [
        ("email", "value is not a valid email address"),
        ("company", "String should have at least 1 character"),
        ("campaign_id", "unknown campaign 'x'"),
    ]
    assert errors_of(httpx.Response(500, text="boom")) == [("", "HTTP 500: boom")]


def test_rows_carry_their_line_in_the_file_and_any_delimiter_does(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "\ufeffE-Mail;Full Name;Company Name;Employees;Notes\na@b.io;A;B;5;x\n;;;;\nc@d.io;C;D;;y\n"
    )
    rows = list(read_rows(path))
    assert rows == [
        (2, {"email": "a@b.io", "name": "A", "company": "B", "size": "5"}),
        (4, {"email": "c@d.io", "name": "C", "company": "D", "size": ""}),
    ]


def test_a_file_without_the_required_columns_is_not_imported(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email,phone\na@b.io,123\n")
    with pytest.raises(ImportAborted, match="name, company"):
        list(read_rows(path))
    with pytest.raises(ImportAborted, match="cannot read"):
        list(read_rows(tmp_path / "absent.csv"))


def test_the_shipped_example_reads(tmp_path: Path) -> None:
    rows = list(read_rows(EXAMPLE))
    assert len(rows) == 11
    local = {line: problems for line, row in rows if (problems := parse_row(row, "event", None)[1])}
    assert local == {12: [("size", "size must be a whole number of employees, not 'lots'")]}


def test_the_report_lists_each_problem_with_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "errors.csv"
    write_report(
        path, [RowError(3, "a@b", "email", "not an email"), RowError(3, "a@b", "size", "not, a number")]
    )
    assert path.read_text().splitlines() == [
        "row,email,field,reason",
        "3,a@b,email,not an email",
        '3,a@b,size,"not, a number"',
    ]


def test_without_a_bearer_token_nothing_is_imported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LEADFLOW_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exited:
        main([str(EXAMPLE), "--url", "http://127.0.0.1:9"])
    assert exited.value.code == 2
    assert "LEADFLOW_TOKEN" in capsys.readouterr().err


def test_the_token_goes_with_every_row_and_a_refused_one_stops_the_import() -> None:
    seen: list[str | None] = []

    def service(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != "Bearer good":
            return httpx.Response(401, json={"detail": [{"msg": "Signature has expired"}]})
        return httpx.Response(202, json={"lead_id": "x", "duplicate": False})

    transport = httpx.MockTransport(service)
    with httpx.Client(transport=transport, headers={"Authorization": "Bearer good"}) as client:
        assert post(client, "http://marketing", {}).status_code == 202
    with (
        httpx.Client(transport=transport, headers={"Authorization": "Bearer old"}) as client,
        pytest.raises(ImportAborted, match="refused the token: HTTP 401: Signature has expired"),
    ):
        post(client, "http://marketing", {})
    assert seen == ["Bearer good", "Bearer old"]  # a refused token is not tried again
