"""Play one round of the demo team against a running server, over real sockets.

    python -m bench.smoke http://127.0.0.1:8000 [--password poker-demo]

Exits non-zero if anything in the round does not behave. Used by CI against `make run`.
"""

import argparse
import asyncio
import sys

from bench.client import TableClient, login


async def play(base_url: str, password: str) -> None:
    alice_session = login(base_url, "alice", password)
    bob_session = login(base_url, "bob", password)
    async with (
        TableClient(base_url, "demo", alice_session) as alice,
        TableClient(base_url, "demo", bob_session) as bob,
    ):
        if (
            alice.snapshot["data"]["round"]
            and alice.snapshot["data"]["round"]["status"] == "voting"
        ):
            await alice.command("reveal_cards")
        await alice.command("start_round", title="Smoke check")
        await bob.wait_for("round_started")
        await bob.command("cast_vote", value="3")
        seen = await alice.wait_for("vote_cast")
        if "value" in seen["data"]:
            raise AssertionError("a vote value leaked before reveal")
        await alice.command("cast_vote", value="5")
        await alice.command("reveal_cards")
        revealed = await bob.wait_for("cards_revealed")
        stats = revealed["data"]["round"]["stats"]
        if stats["mean"] != 4 or stats["median"] != 4:
            raise AssertionError(f"wrong statistics: {stats}")
        await alice.command("accept_estimate", value="5")
        print(f"smoke: played a round at {base_url}: mean {stats['mean']}, accepted 5")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("--password", default="poker-demo")
    args = parser.parse_args()
    try:
        asyncio.run(play(args.base_url.rstrip("/"), args.password))
    except Exception as exc:
        print(f"smoke: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
