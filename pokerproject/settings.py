"""One settings module for every mode.

Every knob comes from the environment; the defaults are the embedded mode (SQLite file per
database alias, in-memory channel layer, local-memory cache, Celery tasks run eagerly). Setting
DATABASE_URL, SHARD_URLS, REDIS_URL and CELERY_BROKER_URL switches each integration to the real
service. See docs/operations.md for the full list.
"""

from datetime import timedelta
from pathlib import Path

import environ
from redis.exceptions import ConnectionError as RedisConnectionError

from pokerproject import logs
from pokerproject.regions.config import parse_shard_urls

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# The embedded default may run with a development key; any deployment with DEBUG off must set one.
SECRET_KEY = env(
    "DJANGO_SECRET_KEY",
    default="django-insecure-embedded-mode-only-set-DJANGO_SECRET_KEY"
    if DEBUG
    else environ.Env.NOTSET,
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_prometheus",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "pokerproject.regions",
    "accounts",
    "stories",
    "rooms",
    "replication",
    "integrations",
    "notifications",
    "operations",
    "api",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # The request id on every log record and the response; one access line (pokerproject/logs.py).
    "pokerproject.logs.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page's language: the language cookie (the selector in the footer), else Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "pokerproject.logs.UserContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Permissions-Policy; no-store for signed-in users (after auth: it asks who is signed in).
    "pokerproject.security.SecurityHeadersMiddleware",
    # After auth and messages (its 400 page is a normal page), before any view reads input.
    "pokerproject.inputs.UnstorableInputMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Answers a locked-out login with the lockout page (axes: keep it last but Prometheus').
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "pokerproject.urls"
ASGI_APPLICATION = "pokerproject.asgi.application"
WSGI_APPLICATION = "pokerproject.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases --------------------------------------------------------------------------------
# `default` is the directory (users, teams, memberships, sessions). Each shard alias holds the
# stories, rounds and votes of the teams homed on it. SHARD_URLS="alias@region=url,...".
REGION = env("REGION", default="eu")
_SQLITE_OPTIONS = {
    # WAL lets readers proceed while a writer commits; IMMEDIATE takes the write lock up front so
    # concurrent writers queue on busy_timeout instead of failing with "database is locked".
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}
# PostgreSQL connections come from a bounded pool per alias and process (psycopg_pool through
# Django's OPTIONS["pool"]). At most DATABASE_POOL_MAX_SIZE per alias: each process needs one
# per thread that works on the database at once (HTTP requests, the socket's database thread,
# ROOM_DB_THREADS); the whole deployment needs processes x aliases x max below PostgreSQL's
# max_connections (docs/operations.md). A request that finds the pool empty waits up to
# DATABASE_POOL_TIMEOUT seconds, then fails. Connections idle for DATABASE_POOL_MAX_IDLE seconds
# are closed down to DATABASE_POOL_MIN_SIZE.
DATABASE_POOL = env.bool("DATABASE_POOL", default=True)
DATABASE_POOL_MIN_SIZE = env.int("DATABASE_POOL_MIN_SIZE", default=1)
DATABASE_POOL_MAX_SIZE = env.int(
    "DATABASE_POOL_MAX_SIZE", default=max(3, env.int("ROOM_DB_THREADS", default=0) + 2)
)
DATABASE_POOL_TIMEOUT = env.float("DATABASE_POOL_TIMEOUT", default=10.0)
DATABASE_POOL_MAX_IDLE = env.float("DATABASE_POOL_MAX_IDLE", default=600.0)
# Seconds a new PostgreSQL connection may take (libpq connect_timeout): a shard that does not
# answer fails the unit of work instead of holding it for the kernel's TCP timeout.
DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
# After a connection failure on a shard, the live table refuses work for that shard with
# `shard_unavailable` until a probe, every this many seconds, reaches it again
# (pokerproject/regions/availability.py).
SHARD_RETRY_SECONDS = env.float("SHARD_RETRY_SECONDS", default=2.0)


def _database(url: str, alias: str) -> dict:
    config = env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        name = Path(config["NAME"])
        if not name.is_absolute():
            name = BASE_DIR / name
        name.parent.mkdir(parents=True, exist_ok=True)
        config["NAME"] = str(name)
        config["OPTIONS"] = {**_SQLITE_OPTIONS, **config.get("OPTIONS", {})}
        return config
    options = dict(config.get("OPTIONS", {}))
    options.setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT)
    # A health check is a query before the first use of a connection in every unit of work
    # (every thread hop under ASGI; with the pool, every checkout). Off, a connection that broke
    # fails one unit of work and is then replaced (Django's default); the cluster turns it off
    # (docs/performance.md).
    config["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=True)
    # Server-side parameters let psycopg prepare a statement a connection runs again and again
    # (the vote batch's three), so PostgreSQL stops parsing and planning them; worth it with
    # connections that live on, as pooled ones do (docs/performance.md, round 6).
    if env.bool("DATABASE_SERVER_SIDE_BINDING", default=False):
        options.update(server_side_binding=True, prepare_threshold=5)
    if DATABASE_POOL:
        # Under ASGI every request runs its sync code on a thread of its own (asgiref's
        # ThreadSensitiveContext), and a persistent connection (CONN_MAX_AGE > 0) belongs to
        # that thread: it stays open after the request until the cyclic GC collects it, one or
        # more per request and alias, until max_connections. A pool per alias and process
        # bounds them; Django returns the connection to it at the end of each unit of work
        # (request, socket call, task), so CONN_MAX_AGE must be 0 and an old
        # DATABASE_CONN_MAX_AGE is ignored here.
        config["CONN_MAX_AGE"] = 0
        options["pool"] = {
            "name": alias,
            "min_size": DATABASE_POOL_MIN_SIZE,
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": DATABASE_POOL_TIMEOUT,
            "max_idle": DATABASE_POOL_MAX_IDLE,
        }
    else:
        # Without the pool, close connections per unit of work (Django's advice under ASGI);
        # a CONN_MAX_AGE > 0 is only safe for WSGI or a management command.
        config.setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
    config["OPTIONS"] = options
    return config


# The embedded default has two regions (one with two shards), so placement and replication
# work on a laptop too.
SHARDS = parse_shard_urls(
    env(
        "SHARD_URLS",
        default=",".join(
            f"{alias}@{alias[:2]}=sqlite:///{VAR_DIR / f'shard-{alias}.sqlite3'}"
            for alias in ("eu-1", "eu-2", "us-1")
        ),
    )
)
DATABASES = {
    "default": _database(
        env("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'default.sqlite3'}"), "default"
    )
}
for _shard in SHARDS:
    DATABASES[_shard.alias] = _database(_shard.url, _shard.alias)
DATABASE_ROUTERS = ["pokerproject.regions.router.PlacementRouter"]
# The embedded mode (`make run` as it comes: debugging, the directory in SQLite): the login page
# lists the demo users `make demo` creates, with their password (DEMO_PASSWORD, as seed_demo).
EMBEDDED_MODE = DEBUG and DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
DEMO_PASSWORD = env("DEMO_PASSWORD", default="poker-demo")
# Raise on a query that reaches a shard other than the one the current team scope allows
# (pokerproject/regions/guard.py). On while debugging and in tests; costs a check per query.
SHARD_GUARD = env.bool("SHARD_GUARD", default=DEBUG)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, channel layer, Celery -------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
CHANNEL_LAYER_PREFIX = env("CHANNEL_LAYER_PREFIX", default="poker")
# redis-py 8's pools raise when exhausted (the async one defaults to 100 connections): size them.
REDIS_MAX_CONNECTIONS = env.int("REDIS_MAX_CONNECTIONS", default=500)
# redis-py 8 times out a socket read after 5 s by default, the length of the core layer's
# blocking pop (BZPOPMIN, 5 s): an idle socket's receive then races the timeout and its consumer
# dies now and then (channels_redis#422). Reads wait longer than the pop; a dead Redis still shows.
REDIS_LAYER_SOCKET_TIMEOUT = 10
# A pooled connection that Redis dropped (a restart) fails its next command: retry that once on
# a fresh connection rather than lose it (a batch of table events, a presence key).
REDIS_RETRY = {"retry_on_error": [RedisConnectionError]}
if REDIS_URL:
    _layer_host = {
        "address": REDIS_URL,
        "max_connections": REDIS_MAX_CONNECTIONS,
        "socket_timeout": REDIS_LAYER_SOCKET_TIMEOUT,
        **REDIS_RETRY,
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # The cache may use its own Redis database (the cluster does); the layer's pub/sub
            # ignores database numbers, so its prefix is what keeps deployments apart.
            "LOCATION": env("REDIS_CACHE_URL", default=REDIS_URL),
            "KEY_PREFIX": CHANNEL_LAYER_PREFIX,
            "OPTIONS": {"max_connections": REDIS_MAX_CONNECTIONS, **REDIS_RETRY},
        }
    }
    # "pubsub" (the cluster and deploy/ set it): one PUBLISH per event, a batch of them in one
    # round trip (pokerproject/channel_layers.py), one SUBSCRIBE per group and worker; 3-4x
    # cheaper than "core" (per-channel lists) for many small groups (docs/performance.md).
    # "core" stays the default: its channels can be read from any event loop, which the
    # service tests' group listener (rooms/tests/channel_events.py) relies on.
    if env("CHANNEL_LAYER_BACKEND", default="core") != "pubsub":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [_layer_host],
                    "prefix": CHANNEL_LAYER_PREFIX,
                    "capacity": 1000,
                },
            }
        }
    else:
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "pokerproject.channel_layers.PubSubChannelLayer",
                "CONFIG": {"hosts": [_layer_host], "prefix": CHANNEL_LAYER_PREFIX},
            }
        }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # capacity: the worker's fan-out channel carries every team event (rooms.realtime.fanout).
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 100_000},
        }
    }

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# Eager (no broker): the outbox's third-party tasks (webhooks, Jira write-backs) queued at commit
# run on this many background threads instead of in the request (pokerproject.outbox); the
# tests turn it off where they observe a delivery right after the change.
OUTBOX_EAGER_IN_BACKGROUND = env.bool("OUTBOX_EAGER_IN_BACKGROUND", default=True)
OUTBOX_EAGER_THREADS = env.int("OUTBOX_EAGER_THREADS", default=4)
# With a Redis broker, a task taken by a worker that dies unacknowledged goes back to the queue
# after the visibility timeout (the replication and webhook sweeps resend sooner). max_retries 0:
# with the broker down, queuing after commit fails at once instead of holding the request for
# kombu's reconnect loop; the outbox rows wait for the sweep.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=300),
    "max_retries": 0,
}
# acks_late tasks running when the broker connection drops are cancelled and redelivered.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {
    "replication.*": {"queue": "replication"},
    "integrations.*": {"queue": "webhooks"},
    # Housekeeping of the REST API rides on the webhooks queue (same workers, same cadence).
    "api.*": {"queue": "webhooks"},
    # E-mail and Slack: a slow mail server must not hold up webhooks or copies.
    "notifications.*": {"queue": "notifications"},
}
CELERY_BEAT_SCHEDULE = {
    "replication-sweep": {
        "task": "replication.sweep",
        "schedule": env.float("REPLICATION_SWEEP_SECONDS", default=15.0),
    },
    "integrations-sweep": {
        "task": "integrations.sweep",
        "schedule": env.float("WEBHOOK_SWEEP_SECONDS", default=15.0),
    },
    "accounts-trim-login-log": {
        "task": "accounts.trim_login_log",
        "schedule": 24 * 3600.0,
    },
    "notifications-sweep": {
        "task": "notifications.sweep",
        "schedule": env.float("NOTIFICATIONS_SWEEP_SECONDS", default=15.0),
    },
    "api-idempotency-purge": {
        "task": "api.purge_idempotency_records",
        "schedule": env.float("IDEMPOTENCY_PURGE_SECONDS", default=3600.0),
    },
}
CELERY_TASK_SERIALIZER = "json"
# The worker logs through LOGGING below (JSON in the cluster), not a format of its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_ACCEPT_CONTENT = ["json"]

# --- Auth, sessions, security -----------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "home"
# django-axes counts failed logins (the site's and the admin's) in the directory database and
# refuses further attempts for a cool-off; its backend must come first. API keys and sockets do
# not log in with a password and are not counted.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_COOLOFF_MINUTES", default=15.0))
# Each item is counted on its own: "username+ip_address" locks an account only for the address
# that failed (nobody can lock someone else out from elsewhere), "ip_address" locks an address
# that fails across many accounts. Adding "username" locks an account from everywhere.
AXES_LOCKOUT_PARAMETERS = [
    item.split("+") if "+" in item else item
    for item in env.list("LOGIN_LOCKOUT_PARAMETERS", default=["username+ip_address", "ip_address"])
]
AXES_RESET_ON_SUCCESS = True
# Successful logins are logged (an audit trail); accounts.trim_login_log deletes the older ones.
LOGIN_LOG_DAYS = env.int("LOGIN_LOG_DAYS", default=30)
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The lockout's JSON answer (to XMLHttpRequest) allows no other origin.
AXES_ALLOWED_CORS_ORIGINS = ""
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Guests joining through a team's guest link: at most this many new guests per client address
# (as django-axes sees it) in each window, counted in the shared cache.
GUEST_JOIN_LIMIT = env.int("GUEST_JOIN_LIMIT", default=10)
GUEST_JOIN_WINDOW_SECONDS = env.int("GUEST_JOIN_WINDOW_SECONDS", default=600)
# Password-reset e-mails: at most this many to one account in each window.
PASSWORD_RESET_LIMIT = env.int("PASSWORD_RESET_LIMIT", default=3)
PASSWORD_RESET_WINDOW_SECONDS = env.int("PASSWORD_RESET_WINDOW_SECONDS", default=3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # One year, what HSTS preload lists and scanners ask for; 0 switches it off (the local cluster).
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading is a one-way commitment for the operator's whole domain: opt in explicitly.
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# /readyz and /metrics answer only `Authorization: Bearer <METRICS_TOKEN>` (pokerproject/health.py).
# Unset, they stay open in the embedded mode and answer 404 with DEBUG off. /healthz is public.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_OPEN_WITHOUT_TOKEN = DEBUG

# Content-Security-Policy (django-csp): scripts and styles only from this origin's static files,
# no inline script, event handler or style attribute (templates use static/js/app.js); sockets
# and fetches to this origin only ('self' covers ws:/wss: of the same host).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# EMAIL_URL fills EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, ... (django-environ's documented idiom).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Planning Poker <poker@localhost>")
SERVER_EMAIL = env("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# An SMTP server that hangs must not hold a worker for long (the message is retried).
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=15.0)
# Where links in messages sent without a request point (session summaries, unsubscribe).
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
# Seconds before each retry of a failed e-mail or Slack post; then the message fails.
NOTIFICATIONS_RETRY_SCHEDULE = env.list(
    "NOTIFICATIONS_RETRY_SCHEDULE", cast=float, default=[30, 120, 600, 1800, 7200]
)
NOTIFICATIONS_INVITES_PER_HOUR = env.int("NOTIFICATIONS_INVITES_PER_HOUR", default=50)

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = env("STATIC_URL", default="/static/")
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_MAX_AGE = 31536000 if not DEBUG else 0
# Serve straight from the apps' static folders while debugging (and in tests), so nothing needs
# collecting; deployments serve the collected, hashed files.
WHITENOISE_USE_FINDERS = DEBUG

# --- Live table -------------------------------------------------------------------------------
# Inbound frame limits per socket: larger frames are refused, faster senders get rate_limited.
ROOM_MAX_FRAME_BYTES = env.int("ROOM_MAX_FRAME_BYTES", default=4096)
ROOM_RATE_LIMIT_PER_SECOND = env.int("ROOM_RATE_LIMIT_PER_SECOND", default=20)
ROOM_RATE_LIMIT_BURST = env.int("ROOM_RATE_LIMIT_BURST", default=40)
# A socket whose frames are refused this many times in a row is closed (4429): each refusal
# still costs a parse and an error frame.
ROOM_RATE_LIMIT_CLOSE_AFTER = env.int("ROOM_RATE_LIMIT_CLOSE_AFTER", default=100)
# The live table page's heartbeat: a ping every N seconds; no answer within M means the network
# dropped silently and the page reconnects.
ROOM_HEARTBEAT_SECONDS = env.float("ROOM_HEARTBEAT_SECONDS", default=15.0)
ROOM_HEARTBEAT_TIMEOUT_SECONDS = env.float("ROOM_HEARTBEAT_TIMEOUT_SECONDS", default=10.0)
# How often each worker says it is alive (rooms/presence.py); the members of a worker that died
# without a goodbye show offline within three of these.
ROOM_PRESENCE_HEARTBEAT_SECONDS = env.float("ROOM_PRESENCE_HEARTBEAT_SECONDS", default=20.0)
# Group commit: a worker writes the votes it receives within this window in one transaction.
ROOM_VOTE_BATCH_MS = env.float("ROOM_VOTE_BATCH_MS", default=2.0)
ROOM_VOTE_BATCH_MAX = env.int("ROOM_VOTE_BATCH_MAX", default=200)
# Threads per worker for the live table's database work (rooms/dbpool.py). 0: the process's
# one database thread, shared with Channels (SQLite wants it; more measured no gain on 2 cores).
ROOM_DB_THREADS = env.int("ROOM_DB_THREADS", default=0)

# --- REST API, webhooks, Jira (integrations/, docs/api.md) ------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        "api.throttling.ApiKeyThrottle",
        "api.throttling.UserThrottle",
        "api.throttling.AnonThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env("API_RATE_PER_KEY", default="600/min"),
        "api_user": env("API_RATE_PER_USER", default="600/min"),
        "api_anon": env("API_RATE_ANONYMOUS", default="60/min"),
    },
    "EXCEPTION_HANDLER": "api.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "api.schema.ProblemAutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Planning Poker API",
    "DESCRIPTION": "Stories, rounds, estimates and the live table of your teams. See docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Fernet keys (comma-separated, newest first) that encrypt Jira tokens and webhook secrets at
# rest; the embedded default derives one from SECRET_KEY. Rotate by prepending a new key.
# How long a request holds its Idempotency-Key before a retry may take it over (its process died).
IDEMPOTENCY_LEASE_SECONDS = env.float("IDEMPOTENCY_LEASE_SECONDS", default=60.0)
INTEGRATIONS_ENCRYPTION_KEYS = env.list("INTEGRATIONS_ENCRYPTION_KEYS", default=[])
# Webhook receivers on private, loopback or link-local addresses are refused (SSRF) unless this
# is on; it is on in the embedded default (DEBUG) so a receiver on localhost works.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=DEBUG)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Seconds to wait before each retry (Standard Webhooks' schedule); then the delivery fails.
WEBHOOK_RETRY_SCHEDULE = env.list(
    "WEBHOOK_RETRY_SCHEDULE", cast=float, default=[5, 300, 1800, 7200, 18000, 36000, 36000]
)
# An endpoint is disabled after this many consecutive failures spread over at least this long.
WEBHOOK_MAX_ENDPOINTS_PER_TEAM = env.int("WEBHOOK_MAX_ENDPOINTS_PER_TEAM", default=20)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=15)
WEBHOOK_DISABLE_AFTER_SECONDS = env.float("WEBHOOK_DISABLE_AFTER_SECONDS", default=86400.0)
WEBHOOK_SECRET_OVERLAP_SECONDS = env.float("WEBHOOK_SECRET_OVERLAP_SECONDS", default=86400.0)
JIRA_TIMEOUT_SECONDS = env.float("JIRA_TIMEOUT_SECONDS", default=15.0)
# Jira sites on private addresses are refused unless this is on (same reasoning as webhooks).
JIRA_ALLOW_PRIVATE_TARGETS = env.bool("JIRA_ALLOW_PRIVATE_TARGETS", default=DEBUG)

LANGUAGE_CODE = "en"
# English is the default and the source language; the catalogue lives in locale/ (`make messages`).
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# LOG_FORMAT: "text" (readable, the default for `make run`) or "json" (one object a line with
# the request, socket, user, team, shard and region fields: the cluster and deploy/ set it).
# Secrets and vote values are kept out of both (pokerproject/logs.py, docs/operations.md).
LOGGING = logs.config(fmt=env("LOG_FORMAT", default="text"), level=env("LOG_LEVEL", default="INFO"))
