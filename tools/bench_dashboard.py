"""The dashboard's pages with 10,000 runs in the database: median ms per page, end to end.

Seeds a SQLite file like `tools/bench_store_dashboard.py` does (10,000 runs of three
workflows, five task runs each, attempts, dead letters, agent attempts), stores the three
workflows, then serves `aop serve`'s app on 127.0.0.1 (real uvicorn), signs in through the
form, and times each page `--repeat` times over HTTP. Prints one JSON line per page with the
median and 95th percentile (target: median <= 50 ms) and the response size. The server adopts
the seeded runs still running, as after a restart, and finishes them during the first pages.

Usage: uv run python tools/bench_dashboard.py [--runs N] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store_dashboard import TASKS, WORKFLOWS, seed

from aop_mcp.config import Settings
from aop_mcp.security.principal import Role
from aop_mcp.server import close_streams, create_app
from aop_mcp.store import SqliteStore
from aop_mcp.workflow import parse_workflow

TARGET_MS = 50.0


def document(name: str) -> dict[str, object]:
    """A five-task chain, named as the seeded task runs are."""
    tasks = [
        {
            "id": task,
            "needs": [TASKS[index - 1]] if index else [],
            "run": {"executor": "python", "function": "builtins:dict"},
        }
        for index, task in enumerate(TASKS)
    ]
    return {"name": name, "tasks": tasks}


class _Server(uvicorn.Server):
    """uvicorn's server, saying when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        await super().startup(sockets)
        self.listening.set()


async def prepare(path: Path, runs: int) -> dict[str, str]:
    """Seed the database; returns ids the pages need (a run, a deep cursor)."""
    store = SqliteStore(path)
    await store.open()
    try:
        for name in WORKFLOWS:
            parsed = parse_workflow(document(name))
            await store.save_workflow(name, parsed.canonical(), parsed.digest(), time.time())
        seeded = await seed(store, runs, 1000)
    finally:
        await store.close()
    ids = seeded.run_ids
    return {"run": ids[len(ids) // 3], "deep": ids[len(ids) // 2]}


async def sign_in(client: httpx2.AsyncClient, token: str) -> None:
    form = await client.get("/signin")
    nonce = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert nonce, form.text
    done = await client.post(
        "/signin",
        data={"csrf": nonce[1], "token": token},
        headers={"Cookie": f"aop_signin={form.cookies['aop_signin']}"},
    )
    assert done.status_code == 303, done.text
    # The cookie is Secure; Python's jar keeps it from plain HTTP, browsers send it to loopback.
    client.headers["Cookie"] = f"aop_session={done.cookies['aop_session']}"


async def time_page(client: httpx2.AsyncClient, path: str, repeat: int) -> dict[str, object]:
    first = await client.get(path)
    assert first.status_code == 200, (path, first.status_code, first.text[:300])
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    samples.sort()
    median = statistics.median(samples)
    return {
        "page": path if len(path) < 60 else path[:57] + "...",
        "unit": "ms",
        "median": round(median, 2),
        "p95": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 2),
        "bytes": len(first.content),
        "target": TARGET_MS,
        "met": median <= TARGET_MS,
    }


async def bench(directory: Path, runs: int, repeat: int) -> None:
    db = directory / "dashboard.db"
    started = time.perf_counter()
    ids = await prepare(db, runs)
    seeding = time.perf_counter() - started
    settings = Settings(data_dir=directory, db=db, host="127.0.0.1", port=0)
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="none")
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    await server.listening.wait()
    port = server.servers[0].sockets[0].getsockname()[1]
    token = (await app.state.hub.tokens.create(Role.VIEWER, "bench"))[1]
    pages = [
        "/",
        "/overview/stats",
        "/workflows",
        "/workflows/deploy",
        "/runs",
        f"/runs?cursor={ids['deep']}",
        "/runs?workflow=deploy&status=failed",
        "/runs?status=running",
        f"/runs/{ids['run']}",
        "/dead-letters",
        "/agents",
    ]
    try:
        async with httpx2.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=30
        ) as client:
            await sign_in(client, token)
            for path in pages:
                print(json.dumps(await time_page(client, path, repeat)), flush=True)
    finally:
        close_streams(app)
        server.should_exit = True
        await serving
    print(json.dumps({"seeded_runs": runs, "seconds": round(seeding, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aop-bench-") as tmp:
        asyncio.run(bench(Path(tmp), args.runs, args.repeat))


if __name__ == "__main__":
    main()
