"""The yardstick: a minimal broadcast server on raw ``websockets``, speaking just enough of the
live table's protocol for the load generator (snapshot, start_round, cast_vote, reveal_cards).

    python -m bench.raw_server --port 8200 --seed var/bench/seed.json

One process, state in memory, no database, no channel layer, no auth beyond looking the session
cookie up in the seed file: what the same workload costs with nothing but the socket work. The
benchmark reports our figures as a ratio of this server's, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.procstats import use_uvloop


def dumps(frame: dict) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Table:
    slug: str
    version: int = 0
    status: str | None = None
    votes: dict[int, str] = field(default_factory=dict)
    sockets: set[ServerConnection] = field(default_factory=set)

    def emit(self, name: str, data: dict) -> int:
        self.version += 1
        broadcast(self.sockets, dumps({"type": name, "version": self.version, "data": data}))
        return self.version


class RawServer:
    def __init__(self, seed: dict) -> None:
        self.members: dict[str, tuple[str, int, str]] = {}
        self.tables: dict[str, Table] = {}
        for team in seed["teams"]:
            self.tables[team["slug"]] = Table(team["slug"])
            for m in team["members"]:
                self.members[m["session"]] = (team["slug"], m["user_id"], m["role"])

    async def handle(self, ws: ServerConnection) -> None:
        cookie = SimpleCookie(ws.request.headers.get("Cookie", ""))
        session = cookie["sessionid"].value if "sessionid" in cookie else ""
        slug = ws.request.path.strip("/").split("/")[-1]
        member = self.members.get(session)
        if member is None or member[0] != slug:
            await ws.close(4403)
            return
        _, user_id, role = member
        table = self.tables[slug]
        table.sockets.add(ws)
        try:
            await ws.send(
                dumps(
                    {
                        "type": "snapshot",
                        "version": table.version,
                        "data": {
                            "me": {"user_id": user_id, "role": role},
                            "round": {"status": table.status} if table.status else None,
                        },
                    }
                )
            )
            async for text in ws:
                await self.command(ws, table, user_id, json.loads(text))
        except websockets.ConnectionClosed:
            pass
        finally:
            table.sockets.discard(ws)

    async def command(self, ws: ServerConnection, table: Table, user_id: int, frame: dict) -> None:
        name, request_id, data = frame["type"], frame.get("request_id"), frame.get("data") or {}
        if name == "cast_vote":
            if table.status != "voting":
                await ws.send(dumps({"type": "error", "request_id": request_id, "code": "nv"}))
                return
            table.votes[user_id] = data["value"]
            version = table.emit("vote_cast", {"user_id": user_id})
            ack = {"type": "ack", "request_id": request_id, "version": version}
            await ws.send(dumps({**ack, "data": {"value": data["value"]}}))
        elif name == "start_round":
            table.status, table.votes = "voting", {}
            version = table.emit("round_started", {"round": {"status": "voting"}})
            await ws.send(dumps({"type": "ack", "request_id": request_id, "version": version}))
        elif name == "reveal_cards":
            table.status = "revealed"
            values = [float(v) for v in table.votes.values() if v.replace(".", "").isdigit()]
            stats = {"mean": statistics.fmean(values) if values else None}
            votes = [{"user_id": u, "value": v} for u, v in table.votes.items()]
            round_ = {"status": "revealed", "votes": votes, "stats": stats}
            version = table.emit("cards_revealed", {"round": round_})
            await ws.send(dumps({"type": "ack", "request_id": request_id, "version": version}))
        else:
            await ws.send(dumps({"type": "ack", "request_id": request_id, "version": 0}))


async def serve_forever(port: int, seed: dict) -> None:
    server = RawServer(seed)
    # The cluster's workers' collector settings (GC_THRESHOLDS=50000,50,100, GC_FREEZE=1 in
    # deploy/cluster/cluster.sh), so a full collection pauses neither side more than the other.
    gc.set_threshold(50000, 50, 100)
    gc.collect()
    gc.freeze()
    async with serve(server.handle, "127.0.0.1", port, compression=None, max_queue=64):
        print(f"raw server on 127.0.0.1:{port}", flush=True)
        await asyncio.Future()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--seed", default="var/bench/seed.json")
    args = parser.parse_args(argv)
    use_uvloop()
    asyncio.run(serve_forever(args.port, json.loads(Path(args.seed).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
