"""A test-only API beside the real one: endpoints that exist to probe auth and error handling."""

from django.urls import path
from ninja import NinjaAPI

from leadsite.api import install_error_handlers
from leadsite.auth import api_key, staff_or_key
from leadsite.models import Scope
from leadsite.urls import urlpatterns as real_urlpatterns

probe = NinjaAPI(urls_namespace="probe", docs_url=None, openapi_url=None)
install_error_handlers(probe)


def _who(request):
    auth = request.auth
    return {"key": getattr(auth, "name", None), "user": getattr(auth, "username", None)}


for _scope in Scope.values:
    probe.get(f"/key/{_scope}", auth=api_key(_scope), url_name=f"get-{_scope}")(_who)
    probe.post(f"/key/{_scope}", auth=api_key(_scope), url_name=f"post-{_scope}")(_who)
    probe.get(f"/staff/{_scope}", auth=staff_or_key(_scope), url_name=f"staff-{_scope}")(_who)


@probe.get("/boom", auth=None)
def boom(request):
    raise RuntimeError("secret internal detail")


@probe.post("/echo", auth=None)
def echo(request):
    return {"bytes": len(request.body)}


urlpatterns = [path("api/_probe/", probe.urls), *real_urlpatterns]
