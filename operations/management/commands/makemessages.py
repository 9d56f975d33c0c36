"""Django's makemessages with this project's defaults, so that `manage.py makemessages -l de`
(and `make messages`) always reads the same sources: the apps and templates, not the
virtualenv, the embedded databases, tests, benchmarks or collected static files. The
JavaScript catalogue (``-d djangojs``) gets the same skip list."""

from django.core.management.commands import makemessages

IGNORED = [
    ".venv",
    "var",
    "staticfiles",
    "node_modules",
    "test-results",
    "deploy",
    "docs",
    "bench",
    "tests",
    "*/tests",
]


class Command(makemessages.Command):
    def handle(self, *args, **options):
        options["ignore_patterns"] = [*options.get("ignore_patterns", []), *IGNORED]
        # File names without line numbers: moving code does not churn the catalogue.
        if not options.get("add_location"):
            options["add_location"] = "file"
        return super().handle(*args, **options)
