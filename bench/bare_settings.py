"""The bare baseline: Django + django-ninja with nothing of leadsite's, for `make bench`.

Same database and Redis as the real app, no middleware, no apps: whatever leadsite costs on top of
this is leadsite's own.
"""

import os

import dj_database_url

SECRET_KEY = "bench-only"
# leadsite.wsgi refuses to start without a secret key; this module sets one.
LEADSITE_SECRET_KEY_MISSING = False
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.bare_urls"
USE_TZ = True
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ["REDIS_URL"],
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "SOCKET_TIMEOUT": 0.5},
    }
}
