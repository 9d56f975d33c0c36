"""Move a team back and forth between two shards, killing each move after one of its steps,
then finishing it, as an operator would by running ``move_team`` again.

    python -m tests.faults.mover <slug> <shard> <shard> <step> [<step> ...]

Run with the cluster's environment (tests/faults/harness.py). Django starts once; each
interrupted move runs in a forked child that SIGKILLs itself as soon as ``step`` is done (the
step committed, the next not begun: no goodbye, no cleanup), then, after ``PAUSE_SECONDS`` in
which the workload keeps voting at the stuck table, this process finishes the move with
``operations.moves.team_move``, the code ``manage.py move_team`` runs. One line per move on
stdout. Forking needs connections not shared with the child: run it with ``DATABASE_POOL=false``.
"""

from __future__ import annotations

import os
import signal
import sys
import time

PAUSE_SECONDS = 1.5


def main(argv: list[str]) -> int:
    slug, first, second, *steps = argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokerproject.settings")
    import django

    django.setup()
    from django.db import connections

    from accounts.models import Team
    from operations.moves import team_move

    for step in steps:
        team = Team.objects.get(slug=slug)
        source = team.shard
        target = second if source == first else first
        connections.close_all()  # the child must not share this process's connections
        child = os.fork()
        if child == 0:

            def die_after(name: str, step: str = step) -> None:
                if name == step:
                    os.kill(os.getpid(), signal.SIGKILL)

            team_move(team=team, target=target, on_step=die_after)
            os._exit(3)  # the step never came: the move did not run as expected
        _, status = os.waitpid(child, 0)
        if not os.WIFSIGNALED(status):
            print(f"move {source} -> {target} was not killed after {step}: {status}", flush=True)
            return 1
        time.sleep(PAUSE_SECONDS)
        done = team_move(team=Team.objects.get(slug=slug), target=target)
        print(f"move {source} -> {target} killed after {step}, then finished: {done}", flush=True)
        time.sleep(PAUSE_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
