"""Settings read from the environment, with safe defaults for the embedded (SQLite) mode.

Every environment variable read here (and anywhere in the code) is listed, with its default and
meaning, in ``docs/settings.md``; ``.env.example`` is a production starting point. A test fails when
a variable is read that the table does not list.
"""

from __future__ import annotations

import os
import secrets
import zoneinfo
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[3]
VAR_DIR = Path(os.environ.get("PRORATA_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _embedded_secret_key() -> str:
    # The embedded mode keeps a random key on disk so sessions survive restarts without setup.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = _flag("PRORATA_DEBUG")
SECRET_KEY = os.environ.get("PRORATA_SECRET_KEY") or _embedded_secret_key()
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("PRORATA_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h
]

PRORATA_CLOCK = os.environ.get("PRORATA_CLOCK", "wall")
if PRORATA_CLOCK not in {"wall", "movable"}:
    raise ValueError(f"PRORATA_CLOCK must be 'wall' or 'movable', not {PRORATA_CLOCK!r}")

INSTALLED_APPS = [
    # Django's admin with the console's site: a second factor and a throttled sign-in.
    "prorata.console.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # its templates and static files: the API docs load swagger-ui from this server
    "prorata.common",
    "prorata.accounts",
    "prorata.catalog",
    "prorata.subscriptions",
    "prorata.billing",
    "prorata.payments",
    "prorata.notifications",
    "prorata.jobs",
    "prorata.api",
    "prorata.support",
    "prorata.licenses",
    "prorata.webhooks",
    # Before the console: its admin.py replaces their device pages.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "prorata.console",
    "prorata.webinars",
    "prorata.web",
]

AUTH_USER_MODEL = "accounts.User"
#: Error reports (the DEBUG 500 page, e-mails to ADMINS) mask card numbers typed into text fields.
DEFAULT_EXCEPTION_REPORTER_FILTER = "prorata.common.reporting.CardSafeExceptionReporterFilter"
# argon2 first: new and re-hashed passwords use it; the others only verify legacy hashes.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

MIDDLEWARE = [
    # First: every request gets its id and its log line, whatever answers it.
    "prorata.common.requestlog.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before X-Frame-Options (last): its header is set when this one answers.
    "prorata.web.middleware.ContentSecurityPolicyMiddleware",
    # Static files are served by the project itself (no CDN, no separate web server needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Each request's own cache of the rows its authorization reads (prorata.accounts.access).
    "prorata.accounts.access.RequestAccessMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Before CSRF and the views: a NUL character in a page's input is a 400 page, never a 500.
    "prorata.web.middleware.NulCharacterMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed the console's second factor.
    "django_otp.middleware.OTPMiddleware",
    # After authentication: a signed-in user's own language wins over the browser's.
    "prorata.web.middleware.UserLanguageMiddleware",
    # An account's pages show its dates in its time zone (billing details).
    "prorata.web.middleware.AccountTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Django's database sessions, read by one prepared query (prorata.accounts.sessions).
SESSION_ENGINE = "prorata.accounts.sessions"

ROOT_URLCONF = "prorata.urls"
WSGI_APPLICATION = "prorata.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "prorata.web.context_processors.navigation",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'prorata.sqlite3'}"
#: PostgreSQL: the tables' owner, for ``prorata migrate`` (and ``grant_app_role``, ``flush``); the
#: application itself connects as DATABASE_URL's user, a role that owns nothing and may not
#: truncate, alter or disable a trigger (prorata.common.books). Empty: DATABASE_URL does both.
PRORATA_MIGRATE_DATABASE_URL = os.environ.get("PRORATA_MIGRATE_DATABASE_URL", "")
#: The application's role, which ``prorata grant_app_role`` grants to.
PRORATA_APP_DATABASE_USER = dj_database_url.parse(DATABASE_URL).get("USER") or ""
# Set by the ``prorata`` command for the commands that change the schema (prorata.cli).
_AS_OWNER = bool(PRORATA_MIGRATE_DATABASE_URL) and _flag("PRORATA_AS_OWNER")
# Persistent connections: reopening one per request cost 42-53 % of throughput (DESIGN §8).
_default_db = dj_database_url.parse(PRORATA_MIGRATE_DATABASE_URL if _AS_OWNER else DATABASE_URL,
                                    conn_max_age=600, conn_health_checks=True)
if _default_db["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, with this process's writers queued on a lock rather than on SQLite's
    # polling busy handler (prorata.common.sqlite.base: stalls and unfair waits under load).
    _default_db["ENGINE"] = "prorata.common.sqlite"
    # Tests run on SQLite's in-memory database, as with Django's own backend (which test runners
    # such as pytest-django recognise only by its module name).
    _default_db["TEST"] = {"NAME": ":memory:"}
    _default_db["OPTIONS"] = {
        # WAL lets readers run beside the writer; NORMAL is durable across application crashes.
        # A 64 MB page cache (SQLite's default is 2 MB) and reads through mmap: the billing
        # run touches every due subscription's account, balance and card at random; checkpoints
        # of the write-ahead log every 64 MB rather than every 4 MB (a page changed by many chunks
        # is copied to the database file fewer times).
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
        "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000; PRAGMA cache_size=-65536; "
        "PRAGMA mmap_size=268435456; PRAGMA wal_autocheckpoint=16384;",
        # Take the write lock at BEGIN so two writers queue instead of failing mid-transaction.
        "transaction_mode": "IMMEDIATE",
    }
elif _default_db["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with each request's health check of the persistent connection done
    # without a round trip (prorata.common.postgresql.base).
    _default_db["ENGINE"] = "prorata.common.postgresql"
    _default_db["OPTIONS"] = {
        # A statement used 5 times on a connection is prepared there (psycopg's
        # prepare_threshold; Django's default None never prepares). Django's own cursors bind
        # in the client and are never prepared; the hand-written queries' cursor binds on the
        # server (prorata.common.db.prepared_cursor), so PostgreSQL plans each of them once per
        # connection instead of on every request (benchmarks/README.md, "Hand-written queries").
        # Behind PgBouncer in transaction mode, prepared statements need PgBouncer >= 1.21 with
        # max_prepared_statements, or prepare_threshold None.
        "prepare_threshold": 5,
        **_default_db.get("OPTIONS", {}),
    }
DATABASES = {"default": _default_db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [Path(__file__).resolve().parents[1] / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# WhiteNoise serves the apps' static files straight from their directories (found once at start-up),
# so neither the demo nor production needs a collectstatic step; `prorata collectstatic` still works.
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/billing/"
LOGOUT_REDIRECT_URL = "/"
#: Password reset links (and e-mail change links) expire after 24 hours of the project clock.
PASSWORD_RESET_TIMEOUT = 24 * 3600

DEFAULT_FROM_EMAIL = os.environ.get("PRORATA_FROM_EMAIL", "Prorata <billing@prorata.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
if os.environ.get("PRORATA_SMTP_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = os.environ["PRORATA_SMTP_HOST"]
    EMAIL_PORT = int(os.environ.get("PRORATA_SMTP_PORT", "587"))
    EMAIL_HOST_USER = os.environ.get("PRORATA_SMTP_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("PRORATA_SMTP_PASSWORD", "")
    EMAIL_USE_TLS = _flag("PRORATA_SMTP_TLS", default=True)
    EMAIL_TIMEOUT = 30
else:
    # One .eml file per message, named so that the newest is listed last.
    EMAIL_BACKEND = "prorata.notifications.backends.EmlDirectoryBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
# Any other Django e-mail backend by its dotted path (e.g. the console one while debugging).
EMAIL_BACKEND = os.environ.get("PRORATA_EMAIL_BACKEND", EMAIL_BACKEND)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False
CSRF_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if _flag("PRORATA_HTTPS"):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Plain-HTTP requests are sent to HTTPS, except the probes of a load balancer or of
    # Prometheus on the private side of the proxy.
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    # Browsers then refuse plain HTTP for this host for a year (0 turns it off, e.g. while trying).
    SECURE_HSTS_SECONDS = int(os.environ.get("PRORATA_HSTS_SECONDS", str(365 * 24 * 3600)))
    # For every subdomain too, and on the browsers' preload list: the domain owner's decision,
    # off unless set (`prorata check --deploy` reminds of them).
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag("PRORATA_HSTS_INCLUDE_SUBDOMAINS")
    SECURE_HSTS_PRELOAD = _flag("PRORATA_HSTS_PRELOAD")

#: The seller, for invoices and tax (DESIGN §3): country and VAT number.
PRORATA_SELLER_COUNTRY = os.environ.get("PRORATA_SELLER_COUNTRY", "FR")
PRORATA_SELLER_VAT_NUMBER = os.environ.get("PRORATA_SELLER_VAT_NUMBER", "FR40303265045")
PRORATA_SELLER_NAME = os.environ.get("PRORATA_SELLER_NAME", "Prorata Webinars SAS")
#: The seller's time zone (IANA name): the year of a document's number is the year of its issue
#: there (an invoice issued at 2026-12-31T23:30Z in Paris is 2027-…).
PRORATA_SELLER_TIME_ZONE = os.environ.get("PRORATA_SELLER_TIME_ZONE", "Europe/Paris")
try:  # refused at start-up, not at the first invoice
    zoneinfo.ZoneInfo(PRORATA_SELLER_TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"PRORATA_SELLER_TIME_ZONE={PRORATA_SELLER_TIME_ZONE!r} is not a time zone name "
        "(examples: Europe/Paris, America/New_York).") from None
#: The seller's postal address as printed on invoices (lines separated by "\n" in the variable).
PRORATA_SELLER_ADDRESS = os.environ.get(
    "PRORATA_SELLER_ADDRESS", "12 rue de la Paix\n75002 Paris\nFrance"
).replace("\\n", "\n")

#: The payment gateway (prorata.payments.gateway): ``sandbox`` (the built-in offline gateway, which
#: takes test card numbers), ``stripe`` (prorata.payments.stripe_gateway, with the keys below), or
#: a dotted path to a Gateway class or factory.
PRORATA_PAYMENT_GATEWAY = os.environ.get("PRORATA_PAYMENT_GATEWAY", "sandbox")
#: Stripe (docs/payments.md): the secret API key (sk_live_… / sk_test_… / a restricted rk_…), the
#: publishable key for Stripe.js (pk_…), the webhook endpoint's signing secret (whsec_…), the API's
#: address (another one only for a local fake Stripe in tests), and the seconds a call may take.
PRORATA_STRIPE_SECRET_KEY = os.environ.get("PRORATA_STRIPE_SECRET_KEY", "")
PRORATA_STRIPE_PUBLISHABLE_KEY = os.environ.get("PRORATA_STRIPE_PUBLISHABLE_KEY", "")
PRORATA_STRIPE_WEBHOOK_SECRET = os.environ.get("PRORATA_STRIPE_WEBHOOK_SECRET", "")
PRORATA_STRIPE_API_BASE = os.environ.get(
    "PRORATA_STRIPE_API_BASE", "https://api.stripe.com").rstrip("/")
PRORATA_STRIPE_TIMEOUT = float(os.environ.get("PRORATA_STRIPE_TIMEOUT", "30"))
#: The Content-Security-Policy of every page (prorata.web.middleware): every script is a file of
#: this server (none inline, no eval: the pages' behaviour is in static/prorata/*.js, htmx is
#: configured by its meta tag); with the Stripe gateway, Stripe.js and its frames are added at
#: each request (prorata.payments.stripe_gateway.CONTENT_SECURITY_POLICY). Inline styles stay
#: allowed: the pages' style attributes cannot run script, and htmx inserts its indicator style.
PRORATA_CONTENT_SECURITY_POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "frame-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
}

#: The API's documentation (/api/v1/docs and its OpenAPI document /api/v1/openapi.json):
#: ``public``, ``staff`` (signed-in staff only, others 404) or ``off`` (404).
PRORATA_API_DOCS = os.environ.get("PRORATA_API_DOCS", "public")
if PRORATA_API_DOCS not in {"public", "staff", "off"}:
    raise ValueError(f"PRORATA_API_DOCS must be 'public', 'staff' or 'off', not {PRORATA_API_DOCS!r}")

#: Where people reach this server; links in e-mails are made absolute with it.
PRORATA_BASE_URL = os.environ.get("PRORATA_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Web server worker processes (prorata serve); 0: one per core.
PRORATA_WEB_WORKERS = int(os.environ.get("PRORATA_WEB_WORKERS", "0"))
#: Where customers' support messages go when no staff member is assigned (corporate accounts:
#: their advisor).
#: The issuer shown in staff members' authenticator apps.
OTP_TOTP_ISSUER = "Prorata console"
PRORATA_SUPPORT_EMAIL = os.environ.get("PRORATA_SUPPORT_EMAIL", "support@prorata.example")
# Processes the billing run renews in, side by side (PostgreSQL); 0: one per core, at most 4.
PRORATA_BILL_RUN_WORKERS = int(os.environ.get("PRORATA_BILL_RUN_WORKERS", "0"))

PRORATA_TRUST_X_FORWARDED_FOR = _flag("PRORATA_TRUST_X_FORWARDED_FOR")


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ValueError(f"{name} must be a number of seconds above 0, such as 60, not {value!r}")
    return seconds


#: How often each periodic job starts, in seconds (prorata.jobs.schedule): e-mails within seconds
#: of being queued, the billing run hourly, dunning retries and unknown payments within minutes.
PRORATA_JOB_EVERY = {
    "deliver-mail": _seconds("PRORATA_MAIL_EVERY", 5),
    "bill-run": _seconds("PRORATA_BILL_RUN_EVERY", 3600),
    "dunning": _seconds("PRORATA_DUNNING_EVERY", 900),
    "overdue": _seconds("PRORATA_OVERDUE_EVERY", 3600),
    "reconcile-payments": _seconds("PRORATA_RECONCILE_EVERY", 60),
    "prune": _seconds("PRORATA_PRUNE_EVERY", 3600),
    "deliver-webhooks": _seconds("PRORATA_WEBHOOKS_EVERY", 5),
}

#: Webhooks out (prorata.webhooks.delivery): endpoints drained at once, each on its own thread and
#: kept-alive connection; seconds an endpoint has to answer a delivery before it counts as failed.
PRORATA_WEBHOOK_THREADS = int(os.environ.get("PRORATA_WEBHOOK_THREADS", "4"))
PRORATA_WEBHOOK_TIMEOUT = _seconds("PRORATA_WEBHOOK_TIMEOUT", 10)

#: Logs: JSON lines by default (one object per line: time, level, logger, message, request_id,
#: account_id, job, job_id and the record's own fields), or ``text`` for a person at a terminal.
PRORATA_LOG_FORMAT = os.environ.get("PRORATA_LOG_FORMAT", "json")
if PRORATA_LOG_FORMAT not in {"json", "text"}:
    raise ValueError(f"PRORATA_LOG_FORMAT must be 'json' or 'text', not {PRORATA_LOG_FORMAT!r}")
PRORATA_LOG_LEVEL = os.environ.get("PRORATA_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "prorata.common.requestlog.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": PRORATA_LOG_FORMAT,
                    "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": PRORATA_LOG_LEVEL},
    "loggers": {
        # fpdf2's font subsetting reports every table at INFO.
        "fontTools": {"level": "WARNING"},
    },
}

#: Prometheus metrics at /metrics, for a scraper sending ``Authorization: Bearer <token>``; unset,
#: /metrics answers 404. The web server's and the worker's processes on one machine add up their
#: values through files in PRORATA_METRICS_DIR (default var/metrics; empty: each process alone).
PRORATA_METRICS_TOKEN = os.environ.get("PRORATA_METRICS_TOKEN", "")
PRORATA_METRICS_DIR = os.environ.get("PRORATA_METRICS_DIR", str(VAR_DIR / "metrics"))
if PRORATA_METRICS_DIR:
    Path(PRORATA_METRICS_DIR).mkdir(parents=True, exist_ok=True)
    # prometheus-client reads it when first imported, which is after the settings.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", PRORATA_METRICS_DIR)
#: /readyz says "not ready" while an e-mail has been due for longer than this (seconds): the
#: worker is down or the mail server refuses.
PRORATA_READY_OUTBOX_MAX_AGE = _seconds("PRORATA_READY_OUTBOX_MAX_AGE", 900)
