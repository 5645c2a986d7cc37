"""Open-loop load generator (async httpx), run as its own process: `python -m bench.loadgen CONFIG`.

CONFIG is a JSON file: {"base": url, "pairs": [{"buyer": {token, email}, "seller": {…}}, …],
"rate": requests per second, "seconds": duration, optional "state": path, "trace": path,
"closed_loop_lifecycles": n}. Requests are *offered* at a fixed rate whatever the server's latency
(open loop, so a slow server cannot hide its queueing). Each arrival takes a random idle
buyer/seller pair and issues that pair's next step: a whole order lifecycle (seller proposes two
milestones, buyer accepts, funds, seller delivers, buyer approves, twice) interleaved with reads
(the order, the order list, balances, forecast). If no pair is idle the arrival is counted as not
offered.

Each user is its own client with its own keep-alive connection (80 users, 80 connections), as real
clients are: one shared pool would funnel a light load through one or two connections, i.e. one
server worker. Every connection is opened (GET /healthz) before the clock starts, so a step never
measures TCP setup or the generator's own first-request cost. With "state", each pair's place in
its lifecycle is loaded at the start and saved at the end, so successive steps continue the same
lifecycles instead of all restarting at "propose" (short steps would otherwise never reach deliver
and approve). With "closed_loop_lifecycles" the run is a warm-up instead: every pair runs as fast
as answers come back until it has completed that many lifecycles, then a few more steps (0 to 13,
spread over the pairs) so the measured steps start from a mix of every stage, not 40 proposals.

Prints one JSON line: offered, completed, errors, achieved rate, latencies overall and per endpoint
(method + route template, e.g. `POST /v1/orders/{id}/accept`), and the slowest requests with their
start time in the step (to line outliers up with server-side logs). With "trace", every request is
also written there as a JSON line (wall-clock start, latency, route, status).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sys
import time
from typing import Any

import httpx

READS = ("order", "orders", "balances", "forecast")
LIFECYCLE_STEPS = 14  # 7 writes (propose … approve the second milestone), each followed by a read
_ID = re.compile(r"/(ord|ms)_[0-9A-Z]+")


def _template(method: str, path: str) -> str:
    """`POST /v1/orders/{id}/milestones/{id}/approve`: the route, not the ids (query kept)."""
    return f"{method} {_ID.sub('/{id}', path)}"


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return 1000 * sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Pair:
    def __init__(self, buyer: dict[str, str], seller: dict[str, str]) -> None:
        self.buyer = {"Authorization": f"Bearer {buyer['token']}"}
        self.seller = {"Authorization": f"Bearer {seller['token']}"}
        self.buyer_email = buyer["email"]
        self.order: dict[str, Any] | None = None
        self.step = 0
        self.reads = 0
        self.lifecycles = 0  # orders this pair took to completion (in this process)

    def state(self) -> dict[str, Any]:
        return {"order": self.order, "step": self.step, "reads": self.reads}

    def restore(self, state: dict[str, Any]) -> None:
        self.order, self.step, self.reads = state["order"], state["step"], state["reads"]

    def next_request(self) -> tuple[str, str, str, dict[str, str], Any]:
        """(route template, method, path, headers, json) of this pair's next step; every other step
        is a read."""
        method, path, headers, body = self._next()
        return _template(method, path), method, path, headers, body

    def _next(self) -> tuple[str, str, dict[str, str], Any]:
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
    warm_lifecycles: int = config.get("closed_loop_lifecycles", 0)
    pairs = [Pair(p["buyer"], p["seller"]) for p in config["pairs"]]
    state_path = config.get("state")
    if state_path and os.path.exists(state_path):
        with open(state_path) as f:
            for pair, state in zip(pairs, json.load(f), strict=True):
                pair.restore(state)
    rng = random.Random(config.get("seed", 7))
    idle = list(pairs)
    # one record per request: (start offset s, latency s, route template, status or -1)
    records: list[tuple[float, float, str, int]] = []
    errors: list[str] = []
    not_offered = 0
    tasks: set[asyncio.Task[None]] = set()
    # one client (one keep-alive connection) per user
    clients = {
        id(headers): httpx.AsyncClient(base_url=config["base"], timeout=30.0, headers=headers)
        for pair in pairs
        for headers in (pair.buyer, pair.seller)
    }
    try:
        await asyncio.gather(*(c.get("/healthz") for c in clients.values()))
        begin = time.perf_counter()
        begin_wall = time.time()

        async def one(pair: Pair) -> None:
            route, method, path, headers, body = pair.next_request()
            start = time.perf_counter()
            status = -1
            try:
                resp = await clients[id(headers)].request(method, path, json=body)
                status = resp.status_code
                if resp.status_code >= 400:
                    errors.append(
                        f"{resp.status_code} {method} {path.split('/')[-1]}: {resp.text[:120]}"
                    )
                elif method == "POST":
                    pair.order = resp.json()
                    if pair.order and pair.order["status"] == "completed":
                        pair.lifecycles += 1
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__} {method} {path}")
            finally:
                records.append((start - begin, time.perf_counter() - start, route, status))

        n = 0
        if warm_lifecycles:  # closed loop: every pair as fast as its answers come back

            async def loop(pair: Pair, extra_steps: int) -> None:
                while pair.lifecycles < warm_lifecycles and time.perf_counter() - begin < seconds:
                    await one(pair)
                for _ in range(extra_steps):  # leave the pairs spread over the lifecycle
                    await one(pair)

            await asyncio.gather(
                *(loop(p, i * LIFECYCLE_STEPS // len(pairs)) for i, p in enumerate(pairs))
            )
            n = len(records)
        else:

            async def offered(pair: Pair) -> None:
                try:
                    await one(pair)
                finally:
                    idle.append(pair)

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
                pair = idle.pop(rng.randrange(len(idle)))
                task = asyncio.create_task(offered(pair))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks, timeout=30)
        elapsed = time.perf_counter() - begin
    finally:
        await asyncio.gather(*(c.aclose() for c in clients.values()))
    if state_path:
        with open(state_path, "w") as f:
            json.dump([p.state() for p in pairs], f)
    latencies = sorted(r[1] for r in records)
    by_route: dict[str, list[float]] = {}
    for r in records:
        by_route.setdefault(r[2], []).append(r[1])
    endpoints = {}
    for route, values in sorted(by_route.items()):
        values.sort()
        endpoints[route] = {
            "count": len(values),
            "p50_ms": round(_pct(values, 0.50), 2),
            "p99_ms": round(_pct(values, 0.99), 2),
            "max_ms": round(1000 * values[-1], 2),
        }
    slowest = sorted(records, key=lambda r: -r[1])[:10]
    if config.get("trace"):
        with open(config["trace"], "w") as f:
            for r in records:
                f.write(
                    json.dumps(
                        {
                            "wall": round(begin_wall + r[0], 4),
                            "t": round(r[0], 4),
                            "ms": round(1000 * r[1], 2),
                            "route": r[2],
                            "status": r[3],
                        }
                    )
                )
                f.write("\n")
    return {
        "rate": rate,
        "arrivals": n,
        "not_offered": not_offered,
        "completed": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:5],
        "achieved_rps": len(latencies) / elapsed,
        "p50_ms": _pct(latencies, 0.50),
        "p99_ms": _pct(latencies, 0.99),
        "max_ms": 1000 * latencies[-1] if latencies else 0.0,
        "lifecycles_completed": sum(p.lifecycles for p in pairs),
        "endpoints": endpoints,
        "slowest": [
            {"t": round(r[0], 3), "ms": round(1000 * r[1], 1), "route": r[2], "status": r[3]}
            for r in slowest
        ],
    }


def main() -> None:
    with open(sys.argv[1]) as f:
        config = json.load(f)
    print(json.dumps(asyncio.run(run(config))), flush=True)


if __name__ == "__main__":
    main()
