"""Who may do what: the staff groups and the model permission behind each API scope.

Plain data (no models imported), shared by the groups' data migration, the post_migrate hook that
recreates a missing group, and the staff-session check of the API (leadsite.auth).
"""

from __future__ import annotations

ACQUISITIONS = "Acquisitions"
MANAGERS = "Managers"

# Acquisitions work leads and offers.
ACQUISITIONS_PERMISSIONS = (
    "leads.view_lead",
    "leads.change_lead",
    "leads.view_leadevent",
    "valuation.view_valuation",
    "logs.view_logentry",
    "notifications.view_delivery",
    "notifications.view_staffprofile",
    "grading.view_offer",
    "grading.add_offer",
    "grading.change_offer",
    "grading.view_offergrade",
    "grading.view_offerstatuschange",
)
# Managers also hold API keys, Slack routes and deliveries, payments (reports) and the valuation models.
MANAGERS_PERMISSIONS = (
    *ACQUISITIONS_PERMISSIONS,
    "leads.view_outboxevent",
    "leads.change_outboxevent",
    "leadsite.view_apikey",
    "leadsite.add_apikey",
    "leadsite.change_apikey",
    "leadsite.delete_apikey",
    "notifications.view_route",
    "notifications.add_route",
    "notifications.change_route",
    "notifications.delete_route",
    "notifications.change_delivery",
    "notifications.view_payment",
    "notifications.view_stripeevent",
    "notifications.view_alert",
    "notifications.add_staffprofile",
    "notifications.change_staffprofile",
    "valuation.view_sale",
    "valuation.view_modelversion",
    "grading.view_gradermodel",
)
GROUP_PERMISSIONS = {ACQUISITIONS: ACQUISITIONS_PERMISSIONS, MANAGERS: MANAGERS_PERMISSIONS}

# A staff session reaches a staff endpoint only with the model permission the admin asks for the
# same data. A scope missing here is for keys only (a session needs to be a superuser).
SCOPE_PERMISSIONS = {
    "leads:read": "leads.view_lead",
    "leads:write": "leads.change_lead",
    "logs:read": "logs.view_logentry",
    "valuations:read": "valuation.view_valuation",
    "offers:write": "grading.change_offer",
}


def groups_create(group_model: type, permission_model: type, *, only_missing: bool = False) -> None:
    """Create the groups with their permissions (those that exist; an app not migrated yet adds its own).

    `only_missing`: leave existing groups alone (after a flush, or when staff changed a group on purpose).
    """
    for name, codes in GROUP_PERMISSIONS.items():
        group, created = group_model.objects.get_or_create(name=name)
        if only_missing and not created:
            continue
        for code in codes:
            app_label, codename = code.split(".")
            permission = permission_model.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:
                group.permissions.add(permission)
