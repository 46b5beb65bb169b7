from django.contrib import admin
from django.urls import path

from leadsite.api import api
from notifications.views import slack_interactions

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("slack/interactions", slack_interactions, name="slack-interactions"),
]

# /api/ paths no route matches answer JSON {"detail": "Not Found"} (Django's HTML page elsewhere).
handler404 = "leadsite.api.not_found"
