import os

from django.core.asgi import get_asgi_application

from leadsite.env import require_secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadsite.settings")
application = get_asgi_application()
require_secret_key()
