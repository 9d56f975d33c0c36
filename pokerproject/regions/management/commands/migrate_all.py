from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Apply migrations to the directory and to every shard database, then run the database "
        "system checks (a team on a shard that SHARD_URLS no longer defines stops here)."
    )

    def handle(self, *args, **options):
        verbosity = max(0, options["verbosity"] - 1)
        for alias in settings.DATABASES:
            self.stdout.write(f"Migrating {alias}")
            call_command("migrate", database=alias, interactive=False, verbosity=verbosity)
        call_command("check", databases=list(settings.DATABASES))
