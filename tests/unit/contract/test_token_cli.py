"""`leadflow token`: a bearer token of the local development issuer, as the services check it."""

import time
from pathlib import Path

import jwt
import pytest

from schemas import cli
from schemas.access import LOCAL_ALGORITHM, LOCAL_AUDIENCE, LOCAL_ISSUER, SCOPES


def printed_token(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(["token", *argv]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out  # the token alone, for $(leadflow token)
    return out.strip()


def decode(token: str, issuer_dir: Path) -> dict[str, object]:
    """As the services verify it: the issuer's public key, its algorithm only, iss and aud."""
    claims: dict[str, object] = jwt.decode(
        token,
        (issuer_dir / "public.pem").read_bytes(),
        algorithms=[LOCAL_ALGORITHM],
        audience=LOCAL_AUDIENCE,
        issuer=LOCAL_ISSUER,
        options={"require": ["exp", "iss", "aud", "sub"]},
    )
    return claims


def test_the_default_token_holds_every_scope_for_twelve_hours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    issuer_dir = tmp_path / "issuer"
    before = int(time.time())
    token = printed_token(capsys, "--issuer-dir", str(issuer_dir))
    claims = decode(token, issuer_dir)
    assert (claims["iss"], claims["aud"], claims["sub"]) == (LOCAL_ISSUER, LOCAL_AUDIENCE, "local-developer")
    assert str(claims["scope"]).split() == list(SCOPES)
    assert isinstance(claims["exp"], int)
    assert before + 12 * 3600 <= claims["exp"] <= int(time.time()) + 12 * 3600
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    # The private key for its owner only; the public one for any container it is mounted in.
    assert (issuer_dir / "private.pem").stat().st_mode & 0o777 == 0o600
    assert (issuer_dir / "public.pem").stat().st_mode & 0o777 == 0o644


def test_scopes_subject_and_lifetime_are_chosen_and_the_keys_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    issuer_dir = tmp_path / "issuer"
    first = printed_token(capsys, "--issuer-dir", str(issuer_dir))
    public_key = (issuer_dir / "public.pem").read_bytes()
    token = printed_token(
        capsys,
        *("--issuer-dir", str(issuer_dir), "--subject", "ci-smoke"),
        *("--scopes", "leads:read", "deals:read", "--lifetime", "600"),
    )
    # The same key pair signs both: a service started with the first still trusts the second.
    assert (issuer_dir / "public.pem").read_bytes() == public_key
    decode(first, issuer_dir)
    claims = decode(token, issuer_dir)
    assert (claims["sub"], claims["scope"]) == ("ci-smoke", "leads:read deals:read")
    assert isinstance(claims["exp"], int)
    assert claims["exp"] <= int(time.time()) + 600


def test_a_token_of_another_issuer_s_keys_does_not_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = printed_token(capsys, "--issuer-dir", str(tmp_path / "one"))
    printed_token(capsys, "--issuer-dir", str(tmp_path / "two"))
    with pytest.raises(jwt.InvalidSignatureError):
        decode(token, tmp_path / "two")


@pytest.mark.parametrize(
    "argv",
    [["--scopes", "leads:read", "admin"], ["--scopes"], ["--lifetime", "0"], ["--lifetime", "soon"]],
)
def test_an_unknown_scope_or_a_bad_lifetime_is_a_usage_error(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["token", "--issuer-dir", str(tmp_path / "issuer"), *argv])
    assert exited.value.code == 2
    assert capsys.readouterr().out == ""
    assert not (tmp_path / "issuer").exists()  # nothing made for a refused request


def test_the_help_says_it_is_for_the_local_issuer_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["token", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "LOCAL DEVELOPMENT issuer" in help_text
    assert "no use against a real deployment" in help_text
    assert all(scope in help_text for scope in SCOPES)
