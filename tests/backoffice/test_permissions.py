"""Groups from the data migration, and staff API endpoints that honour the admin's model permissions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from leadsite.permissions import ACQUISITIONS_PERMISSIONS, MANAGERS_PERMISSIONS

pytestmark = pytest.mark.django_db


def _codes(group: str) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=group).permissions.all()}


def test_the_groups_exist_with_their_permissions() -> None:
    assert _codes("Acquisitions") == set(ACQUISITIONS_PERMISSIONS)
    assert _codes("Managers") == set(MANAGERS_PERMISSIONS)
    assert "leadsite.add_apikey" in _codes("Managers") and "leadsite.add_apikey" not in _codes("Acquisitions")


def test_a_staff_session_without_the_model_permission_gets_403_on_staff_endpoints(
    client, make_staff, make_lead
) -> None:
    lead = make_lead()
    client.force_login(make_staff("nobody", group=None))
    assert client.get("/api/leads").status_code == 403
    assert client.get(f"/api/leads/{lead.id}").json() == {
        "detail": "your staff account lacks the permission for 'leads:read'"
    }
    assert client.get("/api/logs").status_code == 403
    assert client.post("/api/valuations", {}, content_type="application/json").status_code == 403


def test_acquisitions_read_and_work_leads_through_the_api_but_not_keys_only_scopes(
    client, make_staff, make_lead
) -> None:
    lead = make_lead()
    client.force_login(make_staff("rita"))
    assert client.get("/api/leads").status_code == 200
    assert client.get("/api/logs").status_code == 200
    response = client.patch(f"/api/leads/{lead.id}", {"status": "contacted"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["status"] == "contacted"


def test_view_only_staff_cannot_patch_a_lead(client, make_staff, make_lead) -> None:
    from django.contrib.auth.models import Permission

    lead = make_lead()
    viewer = make_staff("vera", group=None)
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label="leads", codename="view_lead"))
    client.force_login(viewer)
    assert client.get(f"/api/leads/{lead.id}").status_code == 200
    response = client.patch(f"/api/leads/{lead.id}", {"status": "contacted"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json() == {"detail": "your staff account lacks the permission for 'leads:write'"}
    lead.refresh_from_db()
    assert lead.status == "new"


def test_a_rep_sees_the_lead_screens_but_not_keys_or_routes(client, make_staff) -> None:
    client.force_login(make_staff("rita"))
    assert client.get("/admin/leads/lead/").status_code == 200
    assert client.get("/admin/logs/logentry/").status_code == 200
    assert client.get("/admin/leadsite/apikey/").status_code == 403
    assert client.get("/admin/notifications/route/").status_code == 403
