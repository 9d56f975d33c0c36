"""bench.seed.vacuum: what the benchmark does in place of autovacuum between its phases."""

import pytest
from django.db import connections

from bench.seed import vacuum

# VACUUM cannot run inside the transaction a plain django_db test wraps around itself.
pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def test_every_postgresql_database_is_vacuumed_and_analyzed():
    postgres = [alias for alias in connections if connections[alias].vendor == "postgresql"]
    assert vacuum() == postgres  # none on the embedded default (SQLite)
    for alias in postgres:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT last_vacuum IS NOT NULL, last_analyze IS NOT NULL "
                "FROM pg_stat_user_tables WHERE relname = 'django_migrations'"
            )
            assert cursor.fetchone() == (True, True), alias
