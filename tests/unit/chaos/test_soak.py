"""The soak's own bookkeeping: it runs for hours, so a gap must show in milliseconds."""

from services.runtime.store_metrics import StoreMemory
from tests.chaos.soak import RECORDS, STORE_MEMORY, records_in
from tests.chaos.supervisor import SERVICES


def test_every_service_the_soak_runs_has_a_table_counter() -> None:
    # The webhooks worker joined the supervised services and the soak's first
    # sample crashed on it.
    assert set(RECORDS) == set(SERVICES)


def test_records_sums_a_counter_over_its_labels() -> None:
    exposition = (
        "# TYPE leadflow_webhooks_recorded_total counter\n"
        'leadflow_webhooks_recorded_total{event_type="deal.closed",replay="false"} 3.0\n'
        'leadflow_webhooks_recorded_total{event_type="order.created",replay="true"} 2.0\n'
    )
    assert records_in(exposition, "leadflow_webhooks_recorded_total") == 5


def test_the_stores_memory_the_soak_reads_is_what_workers_report() -> None:
    # Named, not imported, in the soak: it judges from outside.
    assert next(iter(StoreMemory().describe())).name == STORE_MEMORY
    exposition = (
        f"# TYPE {STORE_MEMORY} gauge\n"
        f'{STORE_MEMORY}{{table="leads",kind="memtables"}} 4194304.0\n'
        f'{STORE_MEMORY}{{table="leads",kind="block_cache"}} 1048576.0\n'
        f'{STORE_MEMORY}{{table="facts",kind="memtables"}} 1048576.0\n'
    )
    assert records_in(exposition, STORE_MEMORY) == 6 * 2**20
