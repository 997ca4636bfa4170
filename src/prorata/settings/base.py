"""Settings read from the environment, with safe defaults for the embedded (SQLite) mode.

Environment variables:
- ``DATABASE_URL``: e.g. ``postgres://user@127.0.0.1:5432/prorata``; default: ``var/prorata.sqlite3``.
- ``PRORATA_DEBUG``: ``1`` to turn Django's debug mode on (never in production). Off by default.
- ``PRORATA_SECRET_KEY``: required unless the embedded default key file under ``var/`` is acceptable.
- ``PRORATA_ALLOWED_HOSTS``: comma-separated; default ``127.0.0.1,localhost``.
- ``PRORATA_CLOCK``: ``wall`` (default, production) or ``movable`` (demo and tests; see common.clock).
- ``PRORATA_VAR_DIR``: where the embedded database, mail files and keys live; default ``./var``.
- ``PRORATA_HTTPS``: ``1`` when served over HTTPS (behind a proxy that sets X-Forwarded-Proto):
  session, CSRF and language cookies are then sent over HTTPS only.
- ``PRORATA_TRUST_X_FORWARDED_FOR``: ``1`` when a reverse proxy you run appends the client's address
  to X-Forwarded-For; sign-in throttling then counts per client instead of per proxy. Off by default.
- ``PRORATA_FROM_EMAIL``: the sender of every e-mail; default ``Prorata <billing@prorata.example>``.
- ``PRORATA_SMTP_HOST`` (with ``PRORATA_SMTP_PORT``, ``PRORATA_SMTP_USER``, ``PRORATA_SMTP_PASSWORD``,
  ``PRORATA_SMTP_TLS``): send e-mail through this SMTP server; unset, e-mails are written as files
  under ``var/mail/``.
- ``PRORATA_EMAIL_BACKEND``: a Django e-mail backend's dotted path, overriding the two above.
- ``PRORATA_PAYMENT_GATEWAY``: dotted path of the payment gateway class; default the offline sandbox
  (``prorata.payments.sandbox.SandboxGateway``).
- ``PRORATA_BASE_URL``: the address people reach Prorata at, for links in e-mails; default
  ``http://127.0.0.1:8000``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

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
    # Before the console: its admin.py replaces their device pages.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "prorata.console",
    "prorata.web",
]

AUTH_USER_MODEL = "accounts.User"
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
    "django.middleware.security.SecurityMiddleware",
    # Static files are served by the project itself (no CDN, no separate web server needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Each request's own cache of the rows its authorization reads (prorata.accounts.access).
    "prorata.accounts.access.RequestAccessMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
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
# Persistent connections: reopening one per request cost 42-53 % of throughput (DESIGN §8).
_default_db = dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)
if _default_db["ENGINE"] == "django.db.backends.sqlite3":
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

#: The seller, for invoices and tax (DESIGN §3): country and VAT number.
PRORATA_SELLER_COUNTRY = os.environ.get("PRORATA_SELLER_COUNTRY", "FR")
PRORATA_SELLER_VAT_NUMBER = os.environ.get("PRORATA_SELLER_VAT_NUMBER", "FR40303265045")
PRORATA_SELLER_NAME = os.environ.get("PRORATA_SELLER_NAME", "Prorata Webinars SAS")
#: The seller's postal address as printed on invoices (lines separated by "\n" in the variable).
PRORATA_SELLER_ADDRESS = os.environ.get(
    "PRORATA_SELLER_ADDRESS", "12 rue de la Paix\n75002 Paris\nFrance"
).replace("\\n", "\n")

#: The payment gateway: a dotted path to a Gateway class (prorata.payments.gateway); by default the
#: built-in offline sandbox, which takes test card numbers.
PRORATA_PAYMENT_GATEWAY = os.environ.get(
    "PRORATA_PAYMENT_GATEWAY", "prorata.payments.sandbox.SandboxGateway"
)
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
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PRORATA_LOG_LEVEL", "WARNING")},
}
