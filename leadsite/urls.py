from django.contrib import admin
from django.urls import path

from leads.views import form_example
from leadsite.api import api
from notifications.views import slack_interactions

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("slack/interactions", slack_interactions, name="slack-interactions"),
    path("form/example/", form_example, name="form-example"),
]

# /api/ paths no route matches answer JSON {"detail": "Not Found"} (Django's HTML page elsewhere).
handler404 = "leadsite.api.not_found"
