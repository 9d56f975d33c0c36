import os

from django.core.wsgi import get_wsgi_application

from pokerproject import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokerproject.settings")
tracing.setup()  # before the handler loads the middleware (OTEL_*: pokerproject/tracing.py)
application = get_wsgi_application()
