"""The soak's memory verdict catches growth the data does not explain, and its
arguments set its workers up; no broker needed."""

from pathlib import Path
from types import SimpleNamespace

from schemas.access import LOCAL_ISSUER
from tests.chaos.__main__ import run_issuer, worker_env
from tests.chaos.soak import Sample, arguments, judge, warmup_end

W = "sales-0"


def sample(at_s: float, captured: int, rss: float, records: int, stores: float = 0.0) -> Sample:
    return Sample(
        *(at_s, "load", captured, captured),
        load1=0.0,
        rss_mib={W: rss},
        records={W: records},
        store_peak_mib={W: stores},
    )


IDLE = sample(0, 0, 100.0, 0)


def test_in_memory_the_records_explain_a_steady_cost_each() -> None:
    # 10 MiB per 1,000 records, before and after the warm-up.
    warm, end = sample(120, 1_000, 110.0, 1_000), sample(600, 10_000, 200.0, 10_000)
    judged = judge(W, IDLE, warm, end, in_memory=True, max_growth_pct=20)
    assert judged.growth_pct > 80
    assert judged.unexplained_pct == 0
    assert judged.passed


def test_in_memory_a_cost_per_record_that_grows_fails() -> None:
    warm, end = sample(120, 1_000, 110.0, 1_000), sample(600, 10_000, 250.0, 10_000)
    assert not judge(W, IDLE, warm, end, in_memory=True, max_growth_pct=20).passed


def test_on_disk_rss_must_stay_flat_net_of_what_the_stores_held() -> None:
    warm = sample(120, 1_000, 150.0, 1_000, stores=10.0)
    filled = sample(600, 10_000, 200.0, 10_000, stores=60.0)
    assert judge(W, IDLE, warm, filled, in_memory=False, max_growth_pct=20).passed
    leaked = sample(600, 10_000, 200.0, 10_000, stores=10.0)
    assert not judge(W, IDLE, warm, leaked, in_memory=False, max_growth_pct=20).passed


def test_the_warm_up_lasts_a_share_of_the_leads_and_two_minutes_at_least() -> None:
    samples = [IDLE, *(sample(10 * i, 100 * i, 100.0, 100 * i) for i in range(1, 30))]
    ends = [warmup_end(samples, leads, 0.1, 120) for leads in (1_000, 20_000, 100_000)]
    assert [None if end is None else end.at_s for end in ends] == [120, 200, None]


def test_the_soak_s_arguments_give_its_workers_their_settings(tmp_path: Path) -> None:
    broker = SimpleNamespace(bootstrap="127.0.0.1:27092")
    issuer = run_issuer(tmp_path)
    env = worker_env(arguments(["--store", "rocksdb://"]), broker, "marketing-0", 27001, issuer)  # type: ignore[arg-type]
    assert (env["LEADFLOW_STORE"], env["LEADFLOW_INSTANCE_ID"]) == ("rocksdb://", "marketing-0")
    assert env["LEADFLOW_STANDBY_REPLICAS"] == "1"
    # The workers trust the run's own issuer, whose tokens the clients carry.
    assert env["LEADFLOW_AUTH_PUBLIC_KEY_FILE"] == str((tmp_path / "issuer" / "public.pem").resolve())
    assert env["LEADFLOW_AUTH_ISSUER"] == LOCAL_ISSUER
