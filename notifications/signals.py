"""Keep the cached routing table (notifications.services) in step with the Route rows."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from notifications.models import Route


@receiver(post_save, sender=Route, dispatch_uid="notifications.route_saved")
@receiver(post_delete, sender=Route, dispatch_uid="notifications.route_deleted")
def _route_changed(**kwargs: Any) -> None:
    from notifications.services import routes_cache_clear

    routes_cache_clear()
