import gc
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

from leadsite.env import require_secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadsite.settings")
application = get_wsgi_application()
require_secret_key()
if getattr(settings, "LEAN_PATHS", False):
    from leadsite.lean import LeanPathDispatcher

    # POST /api/leads through only the middleware it needs (leadsite/lean.py).
    application = LeanPathDispatcher(application)

# Import every view module (and what they import: scikit-learn, stripe) while the worker boots,
# not inside the first request it serves.
get_resolver().url_patterns  # noqa: B018

# Everything loaded by now lives as long as the process. Moved out of the collector's sight, a full
# (generation 2) collection no longer walks those ~200k objects, a pause of ~50-300 ms that landed in
# whichever request triggered it: the intake's p99. gunicorn loads the app in each worker, so this
# runs once per worker process (the bare baseline's servers run this module too).
gc.collect()
gc.freeze()
