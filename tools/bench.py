"""`make bench`: benchmarks, one JSON object per line: {"name": ..., "value": ..., "unit": ...}.

Figures are measured on the machine that runs them; nothing here asserts a time (targets
are read by people, not tests). The emulator benchmarks run the server in this process,
so client and server share one interpreter: the figures are a floor for the emulator.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from sf_emulator.app import Emulator
from sf_emulator.seed import seed
from sf_emulator.server import EmulatorServer


def emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def bench_emulator(size: int) -> None:
    emulator = Emulator()
    started = time.perf_counter()
    summary = seed(emulator, size=size, random_seed=7)
    emit(f"emulator_seed_{size // 1000}k_s", time.perf_counter() - started, "s", records=summary["size"])
    with EmulatorServer(emulator) as server:
        sf = server.salesforce()
        started = time.perf_counter()
        rows = 0
        for name in ("Lead", "Contact"):
            rows += len(
                sf.query_all(f"SELECT Id, Name, Email, Owner.Email, SystemModstamp FROM {name}")["records"]
            )
        elapsed = time.perf_counter() - started
        emit("emulator_query_paging_records_per_s", rows / elapsed, "records/s", records=rows)
        started = time.perf_counter()
        rows = 0
        for page in sf.bulk2.Lead.query(
            "SELECT Id, Name, Email, Company, SystemModstamp FROM Lead", max_records=10000
        ):
            rows += page.count("\n") - 1
        for page in sf.bulk2.Contact.query(
            "SELECT Id, Name, Email, AccountId, SystemModstamp FROM Contact", max_records=10000
        ):
            rows += page.count("\n") - 1
        elapsed = time.perf_counter() - started
        emit("emulator_bulk2_results_records_per_s", rows / elapsed, "records/s", records=rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000, help="records in the seeded org")
    args = parser.parse_args()
    bench_emulator(args.size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
