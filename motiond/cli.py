"""The entry point: ``motiond run``, ``check-config``, ``hash-password``, ``new-token``,
``rotate-secret``, ``--version``.

The only place that turns exceptions into exit codes and messages.
"""

from __future__ import annotations

import argparse
import ctypes
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from motiond import __version__
from motiond.config.dump import dump_effective_config
from motiond.config.load import ConfigError, check_startable, load_config
from motiond.logs import stderr_is_journal

EX_OK = 0
EX_CONFIG = 78  # sysexits.h: configuration error (systemd: RestartPreventExitStatus=78)

logger = logging.getLogger("motiond")


# glibc's mallopt() parameters (malloc.h): the number of malloc arenas, and the size from which
# an allocation gets pages of its own (returned to the system when freed).
M_ARENA_MAX = -8
MALLOC_ARENAS = 2
M_MMAP_THRESHOLD = -3
MALLOC_MMAP_THRESHOLD = 128 * 1024


def limit_malloc_arenas() -> None:
    """At most two malloc arenas for the whole process, and a fixed threshold for giving large
    blocks pages of their own (glibc; elsewhere nothing happens).

    glibc gives threads their own arenas, up to eight per core, and each keeps the memory its
    threads freed: with a capture, a recorder and a decoder or encoder thread per camera, that
    was the largest part of what each camera cost beyond its codecs (measured with
    scripts/bench_memory.py: 18 MB per further RTSP camera at 720p, 12 MB with two arenas; four
    RTSP cameras 159 MB, 139 MB with two). Allocation here is a few calls a frame, not a hot
    path. ``MALLOC_ARENA_MAX`` in the environment, if set, wins (glibc reads it first).

    Blocks of 128 KiB and more (decoded pictures, keyframes, detection arrays) get pages of
    their own, returned when freed, at that size for good: glibc's default raises this
    threshold to the largest block freed so far, after which such blocks come from the arenas
    and what they free stays resident (part of what took eight cameras with sub streams from
    163-171 MB peak to 147-148 MB in scripts/bench_ipcam.py; docs/benchmarks.md).
    ``MALLOC_MMAP_THRESHOLD_`` in the environment wins.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        if not os.environ.get("MALLOC_ARENA_MAX"):
            libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
        if not os.environ.get("MALLOC_MMAP_THRESHOLD_"):
            libc.mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
    except (OSError, AttributeError):
        pass  # not glibc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="motiond",
        description="Motion-triggered video recorder: browser-playable clips and live view.",
    )
    parser.add_argument("--version", action="version", version=f"motiond {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = (
        "config file (default: /etc/motiond/motiond.yaml if present, else the embedded demo)"
    )
    run = commands.add_parser("run", help="run in the foreground until SIGINT/SIGTERM")
    run.add_argument("-c", "--config", type=Path, help=config_help)
    check = commands.add_parser("check-config", help="validate and print the effective config")
    check.add_argument("-c", "--config", type=Path, help=config_help)
    commands.add_parser(
        "hash-password",
        help="read a password (prompted, or one line on stdin) and print its hash for "
        "web.auth.users[].password_hash",
    )
    commands.add_parser(
        "new-token", help="print a new bearer token and its hash for web.auth.tokens[].token_hash"
    )
    rotate = commands.add_parser(
        "rotate-secret",
        help="end every browser session: remove the cookie secret and the session table from "
        "storage.dir (a new secret is made at the next start or reload)",
    )
    rotate.add_argument("-c", "--config", type=Path, help=config_help)
    return parser


def hash_password_command() -> int:
    from motiond.web.auth import hash_password  # noqa: PLC0415

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("motiond: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("motiond: use at least 8 characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return EX_OK


def new_token_command() -> int:
    from motiond.web.auth import new_token  # noqa: PLC0415

    token, token_hash = new_token()
    print(f"token (give it to the client; it is not stored): {token}")
    print(f"token_hash (put it in web.auth.tokens): {token_hash}")
    return EX_OK


def rotate_secret_command(storage_dir: Path) -> int:
    from motiond.web.sessions import rotate_secret  # noqa: PLC0415

    removed = rotate_secret(storage_dir)
    for path in removed:
        print(f"removed {path}")
    if not removed:
        print(f"no cookie secret or sessions in {storage_dir}")
    print(
        "every browser session ends when motiond next starts or reloads "
        "(sudo systemctl reload motiond, or kill -HUP its pid)"
    )
    return EX_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "hash-password":
        return hash_password_command()
    if args.command == "new-token":
        return new_token_command()
    try:
        config = load_config(args.config)
        check_startable(config)
    except ConfigError as exc:
        # Under systemd, "<3>" gives the line the journal priority "err" (see motiond.logs).
        priority = "<3>" if stderr_is_journal() else ""
        print(f"{priority}motiond: config error: {exc}", file=sys.stderr)
        return EX_CONFIG

    if args.command == "check-config":
        sys.stdout.write(dump_effective_config(config))
        return EX_OK
    if args.command == "rotate-secret":
        return rotate_secret_command(config.storage.dir)

    limit_malloc_arenas()  # before any library starts a thread
    # PyAV and Tornado are imported only when running, so check-config stays light.
    from motiond.daemon import run_daemon  # noqa: PLC0415
    from motiond.logs import setup_logging  # noqa: PLC0415

    setup_logging(config.log_level)
    logger.info("config: %s", config.source_path)
    try:
        return run_daemon(config, args.config)
    except ConfigError as exc:
        logger.error("config error: %s", exc)
        return EX_CONFIG
    except OSError as exc:
        logger.error("cannot start: %s", exc)
        return 1
    except Exception:
        # Logged, so the traceback reaches the journal with priority "err", not as plain text.
        logger.exception("motiond failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
