from django.contrib import admin
from django.urls import path

from leadsite.api import api
from notifications.views import slack_interactions

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("slack/interactions", slack_interactions, name="slack-interactions"),
]
