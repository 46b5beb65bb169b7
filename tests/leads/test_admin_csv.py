from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_csv_export_defuses_spreadsheet_formulas(admin_client):
    from leads.models import Lead

    lead = Lead.objects.create(name='=HYPERLINK("http://evil.example","x")', phone="+12065550100", message="@SUM(1)")
    export = admin_client.post("/admin/leads/lead/", {"action": "export_csv", "_selected_action": [str(lead.id)]})
    row = b"".join(export.streaming_content).decode().splitlines()[1]
    assert "'=HYPERLINK" in row
    assert ",+12065550100," in row
