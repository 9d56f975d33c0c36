"""Create (or reuse) T teams of M members for a load test, with a session per member.

    python -m bench.seed --teams 1000 --members 10 --out var/bench/seed.json

Run with the target's environment (``source var/cluster/env``). Users, teams and memberships are
written through the ORM in bulk (teams through ``accounts.services.team_create``, so each gets its
home shard and its room); every user's password is ``--password``, so an HTTP login works too.
To spare T x M logins through the login form, each member's session is written straight into
Django's session store with exactly what ``django.contrib.auth.login`` stores (user id, backend,
session auth hash); the generator sends it as the ``sessionid`` cookie. Rerunning reuses the
users and teams of the same ``--prefix`` and issues fresh sessions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path


def seed(*, teams: int, members: int, prefix: str, password: str) -> dict:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string
    from django.utils.module_loading import import_string

    from accounts import services as account_services
    from accounts.models import Membership, Team, User
    from accounts.roles import Role

    usernames = [f"{prefix}-t{t:05d}-m{m:02d}" for t in range(teams) for m in range(members)]
    existing = set(User.objects.filter(username__in=usernames).values_list("username", flat=True))
    hashed = make_password(password)
    User.objects.bulk_create(
        [User(username=name, password=hashed) for name in usernames if name not in existing],
        batch_size=2000,
    )
    users = {u.username: u for u in User.objects.filter(username__in=usernames)}

    slugs = [f"{prefix}-t{t:05d}" for t in range(teams)]
    by_slug = {team.slug: team for team in Team.objects.filter(slug__in=slugs)}
    for slug in slugs:
        if slug not in by_slug:
            creator = users[f"{slug}-m00"]
            by_slug[slug] = account_services.team_create(name=slug, creator=creator)
            assert by_slug[slug].slug == slug, "a team of another prefix took the slug"
    Membership.objects.bulk_create(
        [
            Membership(team=by_slug[slugs[t]], user=users[f"{slugs[t]}-m{m:02d}"], role=Role.VOTER)
            for t in range(teams)
            for m in range(1, members)
        ],
        ignore_conflicts=True,
        batch_size=2000,
    )
    roles = {
        (team_id, user_id): role
        for team_id, user_id, role in Membership.objects.filter(team__slug__in=slugs).values_list(
            "team_id", "user_id", "role"
        )
    }

    # What django.contrib.auth.login() puts in a session, written in bulk.
    # The first backend that can load a user: the login counter (django-axes) comes first and
    # authenticates nobody.
    backend = next(
        path
        for path in settings.AUTHENTICATION_BACKENDS
        if hasattr(import_string(path), "get_user")
    )
    expire = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    store = SessionStore()
    sessions, out_teams = [], []
    for slug in slugs:
        team = by_slug[slug]
        entries = []
        for m in range(members):
            user = users[f"{slug}-m{m:02d}"]
            key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
            data = {
                SESSION_KEY: str(user.pk),
                BACKEND_SESSION_KEY: backend,
                HASH_SESSION_KEY: user.get_session_auth_hash(),
            }
            sessions.append(
                Session(session_key=key, session_data=store.encode(data), expire_date=expire)
            )
            entries.append(
                {
                    "user_id": user.pk,
                    "username": user.username,
                    "session": key,
                    "role": roles[(team.pk, user.pk)],
                }
            )
        out_teams.append({"slug": slug, "id": team.pk, "shard": team.shard, "members": entries})
    Session.objects.bulk_create(sessions, batch_size=2000)
    return {"prefix": prefix, "password": password, "teams": out_teams}


def vacuum() -> list[str]:
    """``VACUUM ANALYZE`` every PostgreSQL database of the target; returns their aliases.

    A production server runs autovacuum, which keeps the planner's statistics in step with
    tables that grow by thousands of rows a second and clears the dead rows that every vote's
    version bump leaves. A server with autovacuum off (this benchmark's box has it off) plans
    the reveal batch's read of its votes as a scan of the whole table, about half of
    PostgreSQL's CPU in a reveal burst (docs/performance.md, round 8); the benchmark does
    autovacuum's job between its phases instead."""
    from django.db import connections

    done = []
    for alias in connections:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        done.append(alias)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=10)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--password", default="bench-pass")
    parser.add_argument("--out", default="var/bench/seed.json")
    parser.add_argument(
        "--vacuum-only",
        action="store_true",
        help="only VACUUM ANALYZE the target's PostgreSQL databases (as autovacuum would)",
    )
    args = parser.parse_args(argv)
    if args.members < 2:
        parser.error("--members must be at least 2 (a facilitator and a voter)")

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokerproject.settings")
    import django

    django.setup()
    started = time.perf_counter()
    if not args.vacuum_only:
        result = seed(
            teams=args.teams, members=args.members, prefix=args.prefix, password=args.password
        )
    vacuumed = vacuum()
    if args.vacuum_only:
        print(f"seed: vacuumed {', '.join(vacuumed) or 'nothing (no PostgreSQL database)'}")
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result))
    print(
        f"seed: {args.teams} teams x {args.members} members ready in "
        f"{time.perf_counter() - started:.1f} s -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
