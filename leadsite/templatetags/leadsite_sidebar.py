"""{% sidebar_app_list %}: the sidebar's links, rendered once per distinct set (leadsite.unfold_speed)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag(takes_context=True)
def sidebar_app_list(context: Any) -> SafeString:
    # Imported here: unfold_speed imports unfold.admin, which renders a widget (so loads this library) on import.
    from leadsite import unfold_speed

    return unfold_speed.sidebar_app_list(context)
