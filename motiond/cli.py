"""The entry point: ``motiond run``, ``check-config``, ``hash-password``, ``new-token``,
``rotate-secret``, ``--version``.

The only place that turns exceptions into exit codes and messages.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from motiond import __version__
from motiond.config import ConfigError, check_storage_writable, dump_effective_config, load_config
from motiond.logs import stderr_is_journal

EX_OK = 0
EX_CONFIG = 78  # sysexits.h: configuration error (systemd: RestartPreventExitStatus=78)

logger = logging.getLogger("motiond")


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
        check_storage_writable(config)
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
