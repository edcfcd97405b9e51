"""Many live viewers in one process, driven over stdin/stdout by bench_live.py.

    python -m scripts.bench.live_viewers --url ws://127.0.0.1:8100/ws/live/bench --count 49

Prints one JSON line once every viewer has connected (or failed). Then, for each ``counts``
line on stdin, one JSON line: each viewer's cumulative frame count, which are still open, and
the latency samples since the previous ``counts``. ``quit`` or end of input closes them all.
Kept out of the harness's process so that the harness's own viewer (the latency probe) does not
wait for the GIL behind these.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import astuple

from scripts.bench.live_client import LiveViewer


async def _connect_all(viewers: list[LiveViewer]) -> list[str]:
    results = await asyncio.gather(*(v.connect() for v in viewers), return_exceptions=True)
    return [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]


def _counts(viewers: list[LiveViewer]) -> dict[str, object]:
    return {
        "frames": [v.frames for v in viewers],
        "bytes": sum(v.bytes_received for v in viewers),
        "open": sum(v.open for v in viewers),
        "close_codes": sorted({v.close_code for v in viewers if v.close_code is not None}),
        "not_jpeg": sum(v.not_jpeg for v in viewers),
        "latencies": [astuple(s) for v in viewers for s in v.take_latencies()],
    }


async def _serve(url: str, count: int) -> None:
    viewers = [LiveViewer(url) for _ in range(count)]
    failures = await _connect_all(viewers)
    # A viewer counts as connected once the daemon has said hello (or closed it).
    for _ in range(100):
        if all(v.hello is not None or v.close_code is not None for v in viewers):
            break
        await asyncio.sleep(0.05)
    connected = sum(v.hello is not None and v.open for v in viewers)
    print(json.dumps({"connected": connected, "failures": failures[:5]}), flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line in ("", "quit"):
                break
            if line == "counts":
                print(json.dumps(_counts(viewers)), flush=True)
    finally:
        for viewer in viewers:
            viewer.close()
        await asyncio.sleep(0.2)  # let the close frames go out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.url, args.count))


if __name__ == "__main__":
    main()
