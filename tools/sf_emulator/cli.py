"""``sf-emulator``: serve a virtual Salesforce org over HTTPS on loopback until interrupted."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from .app import Emulator
from .schema import Schema, SchemaError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sf-emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8443, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="SIZE",
        help="seed a realistic org of about SIZE records (0: empty org)",
    )
    parser.add_argument("--random-seed", type=int, default=42, help="makes the seeded org deterministic")
    parser.add_argument("--state-dir", help="keep certificates, credentials and records here across runs")
    parser.add_argument("--schema", help="JSON schema file with custom objects, fields, rules and profiles")
    parser.add_argument("--daily-limit", type=int, default=100_000, help="daily API request limit")
    parser.add_argument("--json", action="store_true", help="print the connection details as one JSON line")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from .server import STATE_FILE, EmulatorServer

    try:
        schema = Schema.load(args.schema)
    except (OSError, SchemaError) as exc:
        print(f"sf-emulator: {exc}", file=sys.stderr)
        return 2
    try:
        server = EmulatorServer(
            Emulator(schema, daily_limit=args.daily_limit), port=args.port, state_dir=args.state_dir
        )
    except OSError as exc:
        print(f"sf-emulator: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    restored = bool(args.state_dir) and (server.state_dir / STATE_FILE).exists()
    summary: dict[str, Any] | None = None
    if args.seed and not restored:
        from .seed import seed

        summary = seed(server.emulator, size=args.seed, random_seed=args.random_seed)
    info = server.info()
    if args.json:
        print(json.dumps(info), flush=True)
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key.ljust(width)}  {value}")
        if summary:
            print(f"{'seeded'.ljust(width)}  {summary['size']} records (random seed {args.random_seed})")
        elif restored:
            print(f"{'restored'.ljust(width)}  org from {server.state_dir}")
        print("Ctrl-C stops the emulator.", flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
