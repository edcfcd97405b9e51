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
