"""leadsite settings: everything comes from the environment (see README.md, "Settings").

With nothing configured it runs on embedded parts (SQLite, a file cache shared by processes and
kombu's filesystem broker) so `make run` works on a laptop with a real worker. With DATABASE_URL
and REDIS_URL it uses PostgreSQL and Redis.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from leadsite.env import (
    env_bool,
    env_decimal,
    env_int,
    env_list,
    env_str,
    env_url,
    redis_url_db,
    redis_url_with_db,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LEADSITE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or ("insecure-dev-key-only-for-DJANGO_DEBUG=1" if DEBUG else "")
# Outside debug a missing key is refused by every process that serves or signs (gunicorn,
# runserver, Celery worker and beat: leadsite.env.require_secret_key), while maintenance commands
# such as `migrate` and `makemigrations` still run without one.
LEADSITE_SECRET_KEY_MISSING = not SECRET_KEY
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])

INSTALLED_APPS = [
    "unfold.apps.BasicAppConfig",  # the admin theme (before django.contrib.admin: its templates win); our site is leadsite.admin_site
    "leadsite.apps.LeadsiteAdminConfig",  # django.contrib.admin with the dashboard as its index
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "ninja",
    "leadsite",
    "logs",
    "leads",
    "notifications",
    "valuation",
    "grading",
]

MIDDLEWARE = [
    "leadsite.middleware.RequestIdMiddleware",
    "logs.middleware.RequestLogMiddleware",  # one central-log entry per API request
    "leadsite.middleware.RequestGuardMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "leadsite.middleware.AdminMessageMiddleware",  # django.contrib.messages, skipped for /api/
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "leadsite.outages.OutageMiddleware",  # database/Redis down in a non-API view: 503, not 500
]

ROOT_URLCONF = "leadsite.urls"
WSGI_APPLICATION = "leadsite.wsgi.application"

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

# --- Admin theme (django-unfold; see leadsite/admin_site.py) ---------------------------------
UNFOLD = {
    "SITE_TITLE": "leadsite",
    "SITE_HEADER": "leadsite back office",
    # "View site" goes to the back office's own front page: there is no public site here.
    "SITE_URL": "/admin/",
    "SHOW_VIEW_ON_SITE": False,
    "SIDEBAR": {"show_search": True, "navigation": "leadsite.admin_site.sidebar_navigation"},
}
# unfold's login form carries no `next` field: a login from /admin/login/ lands on the back office.
LOGIN_REDIRECT_URL = "/admin/"

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", schemes=("postgres", "postgresql", "pgsql", "sqlite"))
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 2, minimum=2, maximum=60)  # seconds
DATABASE_STATEMENT_TIMEOUT_MS = env_int("DATABASE_STATEMENT_TIMEOUT_MS", 15_000, minimum=0)  # 0 = no limit
DATABASE_LOCK_TIMEOUT_MS = env_int("DATABASE_LOCK_TIMEOUT_MS", 2_000, minimum=0)  # 0 = no limit
# How long a connection is kept (seconds; a dead one is replaced before use: conn_health_checks). A new
# backend first reads the catalog of every log day partition a search plans: a rare word's 45-day window
# (25 partitions) planned in 22-25 ms on a fresh backend, 3-6 ms on one that had planned it before, so
# reconnecting every minute put those spikes into the admin's and the API's rare-word p95.
DATABASE_CONN_MAX_AGE = env_int("DATABASE_CONN_MAX_AGE", 600, minimum=0)
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=DATABASE_CONN_MAX_AGE, conn_health_checks=True)
    }
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # A dead or stuck database must not hang a request: connect, statement and lock waits are
        # bounded, and the API answers 503 + Retry-After (leadsite.outages) instead of hanging.
        # 2 s is libpq's (and psycopg's) smallest connect timeout; a refused connection fails at once.
        _db_options = DATABASES["default"].setdefault("OPTIONS", {})
        _db_options["connect_timeout"] = DATABASE_CONNECT_TIMEOUT
        # lock_timeout also bounds pg_advisory_xact_lock (the intake's duplicate lock, leads/intake/sql.py).
        _db_options["options"] = (
            f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS} -c lock_timeout={DATABASE_LOCK_TIMEOUT_MS}"
        )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # IMMEDIATE: a writing transaction takes the lock when it begins, so a web process and
            # the worker queue for it instead of failing with "database is locked" mid-transaction.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "leadsite",
            "TIMEOUT": 300,
            "OPTIONS": {
                # redis-py uses the hiredis parser by itself when hiredis is installed.
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
                # A cache outage degrades to "no cache"; it never fails a request.
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    DJANGO_REDIS_LOGGER = "leadsite.cache"
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "KEY_PREFIX": "leadsite",
            "TIMEOUT": 300,
        }
    }

# --- Celery ---------------------------------------------------------------------------------
# The broker defaults to the cache's Redis server but its own database (the next number: 0 -> 1,
# 15 -> 0), so a cache FLUSHDB never drops queued tasks. Its Redis must run with
# `maxmemory-policy noeviction` (README, "Reliability"): an evicted task is a lost task.
_DEFAULT_BROKER_URL = ""
if REDIS_URL:
    _DEFAULT_BROKER_URL = redis_url_with_db(REDIS_URL, (redis_url_db(REDIS_URL) + 1) % 16)
CELERY_BROKER_URL = (
    env_url(
        "CELERY_BROKER_URL",
        _DEFAULT_BROKER_URL,
        schemes=("redis", "rediss", "amqp", "pyamqp", "filesystem", "memory", "sqs", "unix"),
    )
    or "filesystem://localhost/"
)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
# How long a task taken by a worker that then vanished (host gone, SIGKILL) waits before the broker
# hands it out again: a little over the hard time limit, so a task that is still running is not
# handed out twice. The effect-based repair (leads.repair) covers anything lost for good.
CELERY_BROKER_VISIBILITY_TIMEOUT = env_int(
    "CELERY_BROKER_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 60, minimum=1, maximum=24 * 3600
)
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)  # kombu expects the folder to exist
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(VAR_DIR / "broker-processed"),
        "control_folder": str(VAR_DIR / "broker-control"),
        "store_processed": False,
        # kombu polls the folder once a second by default: each hop of a lead's fan-out (fan_out ->
        # new_lead delivery) would wait up to that. A directory listing every 100 ms costs ~2% of a core.
        "polling_interval": 0.1,
    }
elif CELERY_BROKER_URL.startswith(("redis", "rediss", "unix")):
    # Short socket timeouts so a publisher never hangs on a broker that is down or stalled;
    # `visibility_timeout` is how long an un-acked (acks_late) task waits before redelivery.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_timeout": 2,
        "socket_connect_timeout": 1,
        "visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT,
        "retry_on_timeout": False,
        # kombu otherwise retries a failed connect for `connect_timeout` seconds inside publish.
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
    }
# Every worker runs an outbox pump (leads.outbox.OutboxPump): it publishes committed outbox rows
# the moment the insert trigger NOTIFYs. Off only for workers that must never publish.
OUTBOX_PUMP = env_bool("OUTBOX_PUMP", True)
# Flow control: the pumps (and the relay) stop publishing to a queue that already holds this many
# messages, and go on as the workers drain it. A backlog waits in PostgreSQL, where it is durable,
# not in the broker: a broker that loses its data loses at most this many tasks per queue (the
# effect-based repair re-runs them), and the broker's memory stays bounded. 0 turns it off.
OUTBOX_BROKER_QUEUE_LIMIT = env_int("OUTBOX_BROKER_QUEUE_LIMIT", 500, minimum=0)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes every database connection before and after each task unless this is
# set (celery#9824 took back its use of CONN_MAX_AGE): a new PostgreSQL backend per task, ~2 per
# lead. With it set that high, the fixup never closes them; leadsite.celery closes them as Django
# does around a request instead (close_old_connections: DATABASE_CONN_MAX_AGE, broken connections,
# health checks). A new child process still drops the connections it inherited.
CELERY_DB_REUSE_MAX = 2**62
CELERY_TASK_SOFT_TIME_LIMIT = max(1, CELERY_TASK_TIME_LIMIT - 30)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# Publishing from a request must not sit in kombu's retry loop: fail fast, the outbox relays later.
CELERY_TASK_PUBLISH_RETRY = False
# Separate queues, so a backlog of one kind of work never starves another: Slack posts (rate
# limited by Slack) on `slack`, valuations (CPU) on `valuation`, beat's periodic jobs on `upkeep`,
# the lead journey on the default `celery`. Every worker command (Procfile, README, tests) consumes
# all four (a worker started without -Q consumes every queue listed here) unless a deployment
# dedicates workers to some of them. Exact task names win over patterns.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name), routing_key=name) for name in ("celery", "slack", "valuation", "upkeep")
)
CELERY_TASK_ROUTES = {
    "leads.relay_outbox": {"queue": "upkeep"},
    "leads.check_sla": {"queue": "upkeep"},
    "leads.purge_idempotency_records": {"queue": "upkeep"},
    "leads.repair_fan_out": {"queue": "upkeep"},
    "leads.remind_follow_ups": {"queue": "upkeep"},
    "notifications.sweep": {"queue": "upkeep"},
    "notifications.daily_digest": {"queue": "upkeep"},
    "logs.*": {"queue": "upkeep"},
    "valuation.retrain_if_due": {"queue": "upkeep"},
    "grading.train_grader": {"queue": "upkeep"},
    "valuation.*": {"queue": "valuation"},
    "notifications.*": {"queue": "slack"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"

# --- Product settings -----------------------------------------------------------------------
SLACK_BOT_TOKEN = env_str("SLACK_BOT_TOKEN")
SLACK_API_BASE_URL = env_url("SLACK_API_BASE_URL", "https://slack.com/api/", schemes=("http", "https"))
if not SLACK_API_BASE_URL.endswith("/"):
    SLACK_API_BASE_URL += "/"
SLACK_SIGNING_SECRET = env_str("SLACK_SIGNING_SECRET")
SLACK_DEFAULT_CHANNEL = env_str("SLACK_DEFAULT_CHANNEL", "#leads")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
# Notification hub (notifications/): Slack call timeout, per-channel limit (messages/second and
# burst, shared by all workers through Redis), retries, and when a `sending` row counts as stuck.
SLACK_TIMEOUT_SECONDS = env_int("SLACK_TIMEOUT_SECONDS", 5, minimum=1, maximum=60)
SLACK_CHANNEL_RATE_PER_MINUTE = env_int("SLACK_CHANNEL_RATE_PER_MINUTE", 60, minimum=1, maximum=6000)
SLACK_CHANNEL_BURST = env_int("SLACK_CHANNEL_BURST", 2, minimum=1, maximum=100)
SLACK_MAX_ATTEMPTS = env_int("SLACK_MAX_ATTEMPTS", 8, minimum=1, maximum=50)
SLACK_SENDING_STALE_SECONDS = env_int("SLACK_SENDING_STALE_SECONDS", 120, minimum=1, maximum=86400)
# The sweeper: a pending/failed delivery overdue this long has perhaps lost its task; it queues an
# extra task for such a row (the queued one stays valid) at most once per SLACK_REQUEUE_SECONDS.
SLACK_SWEEP_GRACE_SECONDS = env_int("SLACK_SWEEP_GRACE_SECONDS", 60, minimum=1, maximum=86400)
SLACK_REQUEUE_SECONDS = env_int("SLACK_REQUEUE_SECONDS", 300, minimum=1, maximum=86400)
ALERT_COLLAPSE_SECONDS = env_int("ALERT_COLLAPSE_SECONDS", 600, minimum=1, maximum=86400)
LEAD_SLA_MINUTES = env_int("LEAD_SLA_MINUTES", 5, minimum=1, maximum=7 * 24 * 60)
# Effect-based repair (leads/repair.py): a lead this old without its fan-out effects is repaired.
LEAD_REPAIR_GRACE_SECONDS = env_int("LEAD_REPAIR_GRACE_SECONDS", 120, minimum=1, maximum=24 * 3600)
LOG_RETENTION_DAYS = env_int("LOG_RETENTION_DAYS", 30, minimum=1, maximum=3650)
# Central logs: an `alert` when this many ERROR+ entries land within 5 minutes (once per 5-minute window).
LOG_ERROR_SPIKE_THRESHOLD = env_int("LOG_ERROR_SPIKE_THRESHOLD", 20, minimum=1)
# Every process writes its log records to the central store (logs.handler). Off by default under pytest,
# where a background writer would commit rows outside each test's transaction; tests that need it turn
# it on, and the worker/web subprocesses tests start (not pytest) have it on.
LOGS_TO_DATABASE = env_bool("LOGS_TO_DATABASE", "pytest" not in sys.modules)

# Valuation (valuation/; see README "Valuation")
# "census" (default): the US Census geocoder, falling back to the ZIP centroid (offline, bundled);
# "off": ZIP centroids only. Under pytest "off", so no test ever reaches the real Census service.
VALUATION_GEOCODER = env_str("VALUATION_GEOCODER", "off" if "pytest" in sys.modules else "census").lower()
if VALUATION_GEOCODER in {"", "none"}:
    VALUATION_GEOCODER = "off"
if VALUATION_GEOCODER not in {"off", "census"}:
    raise ImproperlyConfigured(f"VALUATION_GEOCODER must be 'census' or 'off', got {VALUATION_GEOCODER!r}")
VALUATION_GEOCODER_TIMEOUT_SECONDS = env_int("VALUATION_GEOCODER_TIMEOUT_SECONDS", 3, minimum=1, maximum=30)
VALUATION_GEOCODER_URL = env_url(
    "VALUATION_GEOCODER_URL",
    "https://geocoding.geo.census.gov/geocoder/locations/onelineaddress",
    schemes=("http", "https"),
)
VALUATION_CACHE_SECONDS = env_int("VALUATION_CACHE_SECONDS", 24 * 3600, minimum=1)
VALUATION_MODEL_CHECK_SECONDS = env_int("VALUATION_MODEL_CHECK_SECONDS", 5, minimum=0, maximum=3600)
VALUATION_RETRAIN_MIN_NEW_SALES = env_int("VALUATION_RETRAIN_MIN_NEW_SALES", 500, minimum=1)
VALUATION_DEFAULT_AS_OF = env_str("VALUATION_DEFAULT_AS_OF", "")  # ISO date; "" = today
if VALUATION_DEFAULT_AS_OF:
    import datetime as _dt

    try:
        _dt.date.fromisoformat(VALUATION_DEFAULT_AS_OF)
    except ValueError:
        raise ImproperlyConfigured(
            f"VALUATION_DEFAULT_AS_OF must be an ISO date (YYYY-MM-DD), got {VALUATION_DEFAULT_AS_OF!r}"
        ) from None

# Offer grading (grading/; see README "Offers"). Shares are decimals: 0.08 is 8%.
GRADING_RATIO = env_decimal("GRADING_RATIO", "0.70", minimum="0.5", maximum="0.9")
GRADING_RESALE_COST = env_decimal("GRADING_RESALE_COST", "0.08", minimum="0", maximum="0.5")
GRADING_HOLDING_COST = env_decimal("GRADING_HOLDING_COST", "0.06", minimum="0", maximum="0.5")
GRADING_BUYER_CLOSING_COST = env_decimal("GRADING_BUYER_CLOSING_COST", "0.015", minimum="0", maximum="0.5")
GRADING_DOWNSIDE_REPAIRS = env_decimal("GRADING_DOWNSIDE_REPAIRS", "1.2", minimum="1", maximum="3")
GRADING_LOW_CONFIDENCE = env_decimal("GRADING_LOW_CONFIDENCE", "0.5", minimum="0", maximum="1")
# Repair cost per square foot of living area for each rehab level, e.g. "light=15,medium=30,heavy=55".
GRADING_REPAIR_COST_PER_SQFT: dict = {}
for _item in env_list("GRADING_REPAIR_COST_PER_SQFT", ["light=15", "medium=30", "heavy=55"]):
    _level, _, _cost = _item.partition("=")
    GRADING_REPAIR_COST_PER_SQFT[_level.strip()] = env_decimal(
        "GRADING_REPAIR_COST_PER_SQFT", _cost.strip() or "x", minimum="0", environ={}
    )
if set(GRADING_REPAIR_COST_PER_SQFT) != {"light", "medium", "heavy"}:
    raise ImproperlyConfigured("GRADING_REPAIR_COST_PER_SQFT must set light=, medium= and heavy= (dollars per sqft)")
GRADING_MIN_OUTCOMES = env_int("GRADING_MIN_OUTCOMES", 50, minimum=10)

# POST /api/leads (the public form endpoint) skips the middleware only the admin needs (leadsite/lean.py).
LEAN_PATHS = True
API_MAX_BODY_BYTES = 64 * 1024
API_LOGS_MAX_BODY_BYTES = 1024 * 1024
# Django's own guard for bodies without a Content-Length; the middleware enforces the per-path limits.
DATA_UPLOAD_MAX_MEMORY_SIZE = API_LOGS_MAX_BODY_BYTES

# --- Abuse limits (leadsite.services.rate_limit_check) -------------------------------------------
# Requests per minute one client address may make with a public key (one with browser origins).
API_CLIENT_RATE_PER_MINUTE = env_int("API_CLIENT_RATE_PER_MINUTE", 10, minimum=1)
# Rejected (4xx) requests per minute after which a client address is refused until the minute ends.
RATE_LIMIT_REJECTED_PER_MINUTE = env_int("RATE_LIMIT_REJECTED_PER_MINUTE", 20, minimum=1)
# Proxies in front of gunicorn that append to X-Forwarded-For (0: the client is REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env_int("DJANGO_TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=10)

# --- CORS: the allowed origins are per API key (leadsite.auth.cors_allows_request) ----------
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = (
    "accept",
    "content-type",
    "idempotency-key",
    "x-api-key",
    "x-request-id",
)
CORS_EXPOSE_HEADERS = ("x-request-id", "retry-after")

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HTTPS: on by default outside debug (`manage.py check --deploy` is clean); each can be turned off
# for a plain-HTTP setup such as the test suite's local gunicorn (the Makefile's `test` does).
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
# Off unless asked: the preload list is hard to leave (check --deploy warns, security.W021, until set).
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# Load balancers probe health over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^api/health$"]
# Behind a TLS-terminating proxy: the header it sets, e.g. X-Forwarded-Proto (its value must be https).
# Only set this when the proxy always sets or strips that header, or clients could claim HTTPS.
_proxy_ssl_header = env_str("DJANGO_SECURE_PROXY_SSL_HEADER")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
# Flash messages (the admin's new API key among them) live in the session, never in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise serves the admin's (vendored) assets from gunicorn after `manage.py collectstatic`;
# no CDN at run time.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "leadsite.context.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["context"], "formatter": "plain"},
        "central": {"()": "logs.handler.CentralLogHandler", "filters": ["context"]},
    },
    "root": {"handlers": ["console", "central"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
    },
}

# --- Beat: each app lists its periodic tasks in `<app>/schedule.py` as BEAT_SCHEDULE -----------
# (plain dicts, importable before Django is set up; run exactly one `celery -A leadsite beat`).
CELERY_BEAT_SCHEDULE: dict = {}
for _label in ("leads", "notifications", "valuation", "grading", "logs"):
    try:
        _module = __import__(f"{_label}.schedule", fromlist=["BEAT_SCHEDULE"])
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{_label}.schedule":
            raise
        continue
    CELERY_BEAT_SCHEDULE.update(_module.BEAT_SCHEDULE)
