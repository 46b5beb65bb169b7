from django.contrib import admin
from django.urls import path

from leadsite.api import api
from notifications.views import slack_interactions

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("slack/interactions", slack_interactions, name="slack-interactions"),
]

admin.site.site_header = "leadsite back office"
admin.site.site_title = "leadsite"
admin.site.index_title = "Leads, deals and the team's day"
