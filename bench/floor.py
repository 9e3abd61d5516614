"""The whole-process floor of `topology plan`: a Python process that imports nats-py, connects, sends the
paged LIST requests a plan needs (STREAM.LIST, then CONSUMER.LIST per stream, 64 in flight), decodes
them and exits. No product code: what reading live state costs in a process of its own.

    python bench/floor.py nats://127.0.0.1:4222
"""

from __future__ import annotations

import asyncio
import json
import sys

import nats

API = "$JS.API"
# As many requests in flight as the product allows itself (client.CONCURRENT_REQUESTS), so the
# floor is what the same strategy costs without the product's code around it.
IN_FLIGHT = 64
TIMEOUT = 120.0


async def api(nc, subject: str, body: dict | None = None) -> dict:
    reply = await nc.request(f"{API}.{subject}", json.dumps(body).encode() if body is not None else b"", timeout=TIMEOUT)
    answer = json.loads(reply.data or b"{}")
    if "error" in answer:
        raise RuntimeError(f"{subject}: {answer['error']}")
    return answer


async def bare_lists(nc) -> tuple[int, int]:
    """The LIST requests alone: (streams, consumers) seen."""

    async def paged(subject: str, key: str) -> list[dict]:
        items: list[dict] = []
        while True:
            reply = await api(nc, subject, {"offset": len(items)})
            page = reply.get(key) or []
            items += page
            if not page or len(items) >= reply.get("total", 0):
                return items

    limit = asyncio.Semaphore(IN_FLIGHT)

    async def consumers_of(name: str) -> list[dict]:
        async with limit:
            return await paged(f"CONSUMER.LIST.{name}", "consumers")

    infos = await paged("STREAM.LIST", "streams")
    lists = await asyncio.gather(*(consumers_of(i["config"]["name"]) for i in infos))
    return len(infos), sum(len(c) for c in lists)


async def counted(url: str) -> tuple[int, int]:
    nc = await nats.connect(url)
    try:
        return await bare_lists(nc)
    finally:
        await nc.close()


if __name__ == "__main__":
    print(*asyncio.run(counted(sys.argv[1])))
