"""The bare copier `tests.bench.hops` sets each service against: what aiokafka alone
does with a topic, per process, on the same broker and input.

An AIOKafkaConsumer (its own group, from the earliest offset, auto-commit on)
reads SOURCE; each value is parsed with json.loads and written again, compact and
so of the same size, to TARGET under the same key and headers; the sends of one
fetched batch are awaited together. Several processes with one group share the
partitions, as a service's workers do.

The bench drives it over stdin/stdout: the process prints a JSON line
{"assigned": [...]} whenever the group gives it partitions, starts copying when
it reads the line "go" (once every instance has its share, so no rebalance falls
into the measurement) and stops at end of input.

    .venv/bin/python -m tests.bench.copier --bootstrap HOST:PORT --source T --target T2 --group G
"""

import argparse
import asyncio
import json
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener


class Announce(ConsumerRebalanceListener):  # type: ignore[misc]
    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        pass

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        print(json.dumps({"assigned": sorted(tp.partition for tp in assigned)}), flush=True)


async def line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def copy(bootstrap: str, source: str, target: str, group: str) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    try:
        consumer.subscribe([source], listener=Announce())
        if (await line()).strip() != "go":
            return
        stop = asyncio.ensure_future(line())  # end of input
        while not stop.done():
            batches = await consumer.getmany(timeout_ms=200)
            sends = [
                await producer.send(
                    target,
                    json.dumps(json.loads(record.value), separators=(",", ":")).encode(),
                    key=record.key,
                    headers=list(record.headers),
                )
                for records in batches.values()
                for record in records
            ]
            await asyncio.gather(*sends)
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args()
    asyncio.run(copy(args.bootstrap, args.source, args.target, args.group))


if __name__ == "__main__":
    main()
