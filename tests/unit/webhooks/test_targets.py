import pytest

from services.webhooks.domain.targets import TargetRefused, check_addresses, parse_target, refused_reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1%eth0", "link-local"),
        ("10.1.2.3", "private or reserved"),
        ("192.168.0.10", "private or reserved"),
        ("172.16.5.4", "private or reserved"),
        ("::ffff:10.0.0.1", "private or reserved"),
        ("0.0.0.0", "private or reserved"),
        ("100.64.0.1", "not public"),  # carrier-grade NAT
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
    ],
)
def test_which_addresses_are_refused(address: str, reason: str | None) -> None:
    assert refused_reason(address) == reason


def test_a_name_is_refused_if_any_of_its_addresses_is_private() -> None:
    with pytest.raises(
        TargetRefused, match=r"hooks.example resolves to 10.0.0.7, a private or reserved address"
    ):
        check_addresses("hooks.example", ["93.184.216.34", "10.0.0.7"], allow_private=False)
    check_addresses("hooks.example", ["93.184.216.34", "10.0.0.7"], allow_private=True)
    with pytest.raises(TargetRefused, match="does not resolve"):
        check_addresses("hooks.example", [], allow_private=True)


@pytest.mark.parametrize(
    ("url", "allow_http", "problem"),
    [
        ("http://hooks.example/x", False, "must use https"),
        ("ftp://hooks.example/x", True, "must use https or http"),
        ("https:///x", False, "has no host"),
        ("https://user:pw@hooks.example/", False, "credentials"),
        ("https://hooks.example/#frag", False, "fragment"),
        ("https://hooks.example:99999/", False, "not a URL"),
    ],
)
def test_urls_that_are_refused(url: str, allow_http: bool, problem: str) -> None:
    with pytest.raises(TargetRefused, match=problem):
        parse_target(url, allow_http=allow_http)


def test_host_and_port_of_a_target() -> None:
    assert parse_target("https://hooks.example/in", allow_http=False) == ("hooks.example", 443)
    assert parse_target("http://127.0.0.1:8080/in", allow_http=True) == ("127.0.0.1", 8080)
