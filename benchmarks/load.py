"""The benchmarks' load generator: keep-alive connections to 127.0.0.1, each with one request in
flight, for a bounded time, in a process of its own (so it shares the cores with the server as
any local measurement does, but not its interpreter).

``python benchmarks/load.py PORT CONCURRENCY SECONDS REQUEST_FILE`` sends the raw HTTP request in
REQUEST_FILE over and over and prints ``{"requests", "errors", "seconds", "rps", "p50", "p99"}``
(milliseconds); :func:`drive` runs it from a benchmark.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def http_post(path: str, body: bytes, content_type: str) -> bytes:
    """The raw bytes of one keep-alive POST of ``body`` to ``path`` on 127.0.0.1."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def drive(port: int, concurrency: int, seconds: float, request: bytes) -> dict[str, float]:
    """Send ``request`` to 127.0.0.1:``port`` from ``concurrency`` connections for ``seconds``."""
    with tempfile.NamedTemporaryFile(suffix=".http") as file:
        file.write(request)
        file.flush()
        done = subprocess.run(
            [sys.executable, __file__, str(port), str(concurrency), str(seconds), file.name],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout)
    return result


async def _load(port: int, concurrency: int, seconds: float, request: bytes) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0

    async def worker(deadline: float) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status, length = await reader.readline(), 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            errors += b" 200 " not in status
            latencies.append(time.perf_counter() - started)
        writer.close()

    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(worker(deadline) for _ in range(concurrency)))
    return latencies, errors


def main() -> None:
    port, concurrency, seconds, path = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    started = time.perf_counter()
    latencies, errors = asyncio.run(_load(port, concurrency, seconds, Path(path).read_bytes()))
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(json.dumps({
        "requests": len(latencies), "errors": errors, "seconds": elapsed, "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000, "p99": latencies[int(len(latencies) * 0.99)] * 1000,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
