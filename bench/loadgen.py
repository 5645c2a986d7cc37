"""Open-loop load generator (async httpx), run as its own process: `python -m bench.loadgen CONFIG`.

CONFIG is a JSON file: {"base": url, "pairs": [{"buyer": {token, email}, "seller": {…}}, …],
"rate": requests per second, "seconds": duration}. Requests are *offered* at a fixed rate whatever
the server's latency (open loop, so a slow server cannot hide its queueing). Each arrival takes the
next idle buyer/seller pair and issues that pair's next step: a whole order lifecycle (seller
proposes two milestones, buyer accepts, funds, seller delivers, buyer approves, twice) interleaved
with reads (the order, the order list, balances, forecast). If no pair is idle the arrival is
counted as not offered. Prints one JSON line: offered, completed, errors, achieved rate, latencies.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from typing import Any

import httpx

READS = ("order", "orders", "balances", "forecast")


class Pair:
    def __init__(self, buyer: dict[str, str], seller: dict[str, str]) -> None:
        self.buyer = {"Authorization": f"Bearer {buyer['token']}"}
        self.seller = {"Authorization": f"Bearer {seller['token']}"}
        self.buyer_email = buyer["email"]
        self.order: dict[str, Any] | None = None
        self.step = 0
        self.reads = 0

    def next_request(self) -> tuple[str, str, dict[str, str], Any]:
        """(method, path, headers, json) of this pair's next step; every other step is a read."""
        self.step += 1
        if self.step % 2 == 0 and self.order is not None:
            self.reads += 1
            kind = READS[self.reads % len(READS)]
            if kind == "order":
                return "GET", f"/v1/orders/{self.order['id']}", self.buyer, None
            if kind == "orders":
                return "GET", "/v1/orders?role=seller", self.seller, None
            if kind == "balances":
                return "GET", "/v1/balances", self.seller, None
            return "GET", "/v1/forecast", self.seller, None
        o = self.order
        if o is None or o["status"] in ("completed", "cancelled"):
            return (
                "POST",
                "/v1/orders",
                self.seller,
                {
                    "role": "seller",
                    "counterparty_email": self.buyer_email,
                    "title": "Load test site",
                    "currency": "USD",
                    "milestones": [
                        {
                            "title": f"Page {n}",
                            "description": "",
                            "acceptance_criteria": [f"page {n} live"],
                            "amount": 10_000,
                            "due_days": 5,
                        }
                        for n in (1, 2)
                    ],
                },
            )
        if o["status"] == "proposed":
            return (
                "POST",
                f"/v1/orders/{o['id']}/accept",
                self.buyer,
                {"plan_version": o["plan_version"]},
            )
        if o["status"] == "agreed":  # upfront funding: the whole order at once
            return "POST", f"/v1/orders/{o['id']}/fund", self.buyer, {}
        for m in o["milestones"]:
            if m["status"] == "in_progress":
                return (
                    "POST",
                    f"/v1/orders/{o['id']}/milestones/{m['id']}/deliveries",
                    self.seller,
                    {"message": "done, please review"},
                )
            if m["status"] == "delivered":
                return "POST", f"/v1/orders/{o['id']}/milestones/{m['id']}/approve", self.buyer, {}
        return "GET", f"/v1/orders/{o['id']}", self.buyer, None


async def run(config: dict[str, Any]) -> dict[str, Any]:
    rate: float = config["rate"]
    seconds: float = config["seconds"]
    idle: deque[Pair] = deque(Pair(p["buyer"], p["seller"]) for p in config["pairs"])
    latencies: list[float] = []
    errors: list[str] = []
    not_offered = 0
    tasks: set[asyncio.Task[None]] = set()
    limits = httpx.Limits(max_connections=len(idle) + 10, max_keepalive_connections=len(idle) + 10)
    async with httpx.AsyncClient(base_url=config["base"], limits=limits, timeout=30.0) as client:

        async def one(pair: Pair) -> None:
            method, path, headers, body = pair.next_request()
            start = time.perf_counter()
            try:
                resp = await client.request(method, path, headers=headers, json=body)
                latencies.append(time.perf_counter() - start)
                if resp.status_code >= 400:
                    errors.append(
                        f"{resp.status_code} {method} {path.split('/')[-1]}: {resp.text[:120]}"
                    )
                elif method == "POST":
                    pair.order = resp.json()
            except httpx.HTTPError as exc:
                latencies.append(time.perf_counter() - start)
                errors.append(f"{type(exc).__name__} {method} {path}")
            finally:
                idle.append(pair)

        begin = time.perf_counter()
        n = 0
        while True:
            due = begin + n / rate
            now = time.perf_counter()
            if due - begin >= seconds:
                break
            if due > now:
                await asyncio.sleep(due - now)
            n += 1
            if not idle:
                not_offered += 1
                continue
            task = asyncio.create_task(one(idle.popleft()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        elapsed = time.perf_counter() - begin
    latencies.sort()

    def pct(q: float) -> float:
        return (
            1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0
        )

    return {
        "rate": rate,
        "arrivals": n,
        "not_offered": not_offered,
        "completed": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:5],
        "achieved_rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": 1000 * latencies[-1] if latencies else 0.0,
    }


def main() -> None:
    with open(sys.argv[1]) as f:
        config = json.load(f)
    print(json.dumps(asyncio.run(run(config))), flush=True)


if __name__ == "__main__":
    main()
