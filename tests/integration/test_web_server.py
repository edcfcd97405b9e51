"""The web server's accept loop (motiond/web/server.py) when the process is out of file
descriptors: it pauses instead of spinning, says so once, and serves the waiting clients when
descriptors are free again. Before: Tornado's accept loop logged a traceback per turn (375 MB
a minute) at 70 % of a core.

The server runs in a child process that uses up its descriptors on purpose; the clients are
this process, on loopback.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

from motiond.web.server import FD_RESERVE, connection_cap

OUT_OF_FILES = 3.0  # seconds the child holds every descriptor it may have
CLIENTS = 30

CHILD = textwrap.dedent(
    f"""
    import asyncio, logging, os, resource, sys
    import tornado.web
    from motiond.config.web import WebConfig
    from motiond.web.server import listen

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    class Hello(tornado.web.RequestHandler):
        def get(self):
            self.write("hello")

    def cpu():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    async def main():
        app = tornado.web.Application([(r"/", Hello)])
        server, guard, port = listen(app, WebConfig(port=0), None, 1024)
        fillers = []
        try:
            while True:
                fillers.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            pass
        print(port, flush=True)
        started = cpu()
        await asyncio.sleep({OUT_OF_FILES})
        spent = cpu() - started
        for fd in fillers:
            os.close(fd)
        await asyncio.sleep(3)
        print(f"cpu {{spent:.3f}}", flush=True)

    asyncio.run(main())
    """
)


def ask(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def test_out_of_descriptors_the_server_pauses_then_serves() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(lambda _: ask(port), range(CLIENTS)))
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    # Every client waited in the backlog and was served once descriptors were free.
    assert all(a.startswith(b"HTTP/1.1 200") and a.endswith(b"hello") for a in answers), answers
    assert err.count("pausing accept()") == 1, err  # once a minute at most
    assert "Traceback" not in err
    assert "Too many open files" in err
    spent = float(out.split()[-1])
    # Paused 0.5 s at a time: a few wake-ups, not a spinning loop (that was 70 % of a core).
    assert spent < 0.3 * OUT_OF_FILES, f"{spent:.2f} s of CPU in {OUT_OF_FILES} s"


def test_the_connection_cap_fits_the_open_files_limit() -> None:
    assert connection_cap(256, 4096) == 256
    assert connection_cap(256, 1024) == 256  # (1024 - 128) / 2 = 448
    assert connection_cap(256, 512) == (512 - FD_RESERVE) // 2
    assert connection_cap(256, 100) == 1


CAPPED_CHILD = textwrap.dedent(
    """
    import asyncio, logging, sys
    import tornado.web
    from motiond.config.web import WebConfig
    from motiond.web.server import listen

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    class Hello(tornado.web.RequestHandler):
        def get(self):
            self.write("hello")

    async def main():
        web = WebConfig(
            port=0,
            max_connections=8,
            max_connections_per_client=2,
            trusted_proxies=("127.0.0.2",),
        )
        server, guard, port = listen(tornado.web.Application([(r"/", Hello)]), web, None, 1024)
        print(port, flush=True)
        await asyncio.sleep(60)  # killed by the test

    asyncio.run(main())
    """
)


def idle_from(port: int, source: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # an unfinished head: held open
    return sock


def refused_with(sock: socket.socket) -> bytes:
    """What the server said before closing (b"" while it keeps the connection open)."""
    sock.settimeout(0.5)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return b""


def test_caps_per_client_and_in_total_with_a_trusted_proxy() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CAPPED_CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    held: list[socket.socket] = []
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        # One client: two connections held, the third refused with 429.
        held += [idle_from(port, "127.0.0.3") for _ in range(3)]
        answers = [refused_with(sock) for sock in held]
        assert answers[:2] == [b"", b""]
        assert answers[2].startswith(b"HTTP/1.1 429"), answers[2]
        # The trusted proxy is not one client: six held, up to the total of 8.
        proxy = [idle_from(port, "127.0.0.2") for _ in range(7)]
        held += proxy
        answers = [refused_with(sock) for sock in proxy]
        assert answers[:6] == [b""] * 6, answers
        assert answers[6].startswith(b"HTTP/1.1 503"), answers[6]
        # A closed connection frees its place.
        proxy[0].close()
        time.sleep(0.3)
        late = idle_from(port, "127.0.0.4")
        held.append(late)
        assert refused_with(late) == b""
    finally:
        for sock in held:
            sock.close()
        child.kill()
        _, err = child.communicate()
    text = err.decode()
    assert "127.0.0.3 has 2 connections open (web.max_connections_per_client)" in text
    assert "8 connections open (web.max_connections); refusing" in text
