"""``make faults``: start the system on loopback, run every fault under the workload, check the
invariants after each, print the table and write it into docs/reliability.md.

    python -m tests.faults.run [--only worker_kill,shard_unreachable] [--no-write]

Needs PostgreSQL (``PG_URL``, default postgres://postgres@127.0.0.1:5432), ``redis-server`` and
HAProxy (optional). Exits 1 if any invariant failed. docs/reliability.md says what each fault
and invariant means.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

from tests.faults.harness import ROOT, FaultCluster
from tests.faults.invariants import INVARIANTS
from tests.faults.scenarios import FAULTS, Row, run_fault

DOC = ROOT / "docs" / "reliability.md"
START, END = "<!-- faults-table:start -->", "<!-- faults-table:end -->"


def table(rows: list[Row], *, seconds: float) -> str:
    cores = os.cpu_count()
    head = (
        f"Latest run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.system()} {platform.machine()}, {cores} cores, "
        f"Python {platform.python_version()}; {len(rows)} faults in {seconds:.0f} s.\n\n"
    )
    columns = ["fault", "acks", "votes", "frames", "reconnects", "errors answered", *INVARIANTS]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        codes = ", ".join(f"{code} {n}" for code, n in sorted(row.codes.items())) or "-"
        fault = row.fault if not row.failure else f"{row.fault} (**fault failed**: {row.failure})"
        cells = [row.results[name].cell() for name in INVARIANTS]
        cells = [cell.replace("|", "/") for cell in cells]
        lines.append(
            f"| {fault} | {row.acks} | {row.votes} | {row.frames} | {row.reconnects} | {codes} | "
            + " | ".join(cells)
            + " |"
        )
    return head + "\n".join(lines) + "\n"


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(doc):
        raise SystemExit(f"{DOC} has no {START} ... {END} section")
    DOC.write_text(pattern.sub(lambda _m: f"{START}\n{text}{END}", doc))


async def run(names: list[str]) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        cluster = FaultCluster(Path(tmp))
        try:
            cluster.note(f"starting the system (run {cluster.run}, logs in {tmp})")
            await asyncio.to_thread(cluster.start)
            for name in names:
                rows.append(await run_fault(cluster, name))
        finally:
            await asyncio.to_thread(cluster.stop)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated faults (default: all)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/reliability.md")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(FAULTS)
    unknown = set(names) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
    started = time.monotonic()
    rows = asyncio.run(run(names))
    text = table(rows, seconds=time.monotonic() - started)
    print("\n" + text)
    if not args.no_write:
        write_doc(text)
        print(f"written to {DOC.relative_to(ROOT)}")
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
