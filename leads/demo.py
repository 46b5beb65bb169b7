"""Demo data for `manage.py seed_demo`: the Acquisitions group (with the demo login) and a few leads."""

from __future__ import annotations

from typing import TextIO

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from leads.intake import lead_intake
from leads.models import Lead
from leads.services import ACQUISITIONS_GROUP, lead_fan_out
from leadsite.models import ApiKey
from leadsite.services import AuthenticatedKey, api_key_create

DEMO_LEADS = [
    {
        "name": "Maria Gonzalez",
        "phone": "(206) 555-0142",
        "email": "maria.g@example.com",
        "address": "4512 Fremont Ave N, Seattle, WA 98103",
        "message": "Inherited my mom's house, it needs a new roof.",
        "asking_price": "610000",
        "timeline": "1-3 months",
        "condition": "needs work",
        "beds": 3,
        "baths": "1.75",
        "living_area_sqft": 1640,
        "year_built": 1924,
        "property_type": "sfr",
        "utm_source": "google",
        "utm_campaign": "inherited-homes",
        "consent": True,
        "consent_text": "I agree to be contacted by phone, text and email.",
    },
    {
        "name": "Dwayne Carter",
        "phone": "253.555.0199",
        "address": "4512 Latona Ave N.E., Seattle, WA 98105",
        "message": "Relocating for work next month.",
        "timeline": "asap",
        "condition": "good",
        "beds": 4,
        "baths": "2.5",
        "living_area_sqft": 2280,
        "year_built": 1991,
        "property_type": "sfr",
        "utm_source": "facebook",
        "consent": True,
        "consent_text": "I agree to be contacted by phone, text and email.",
    },
    {
        "name": "王小明",
        "email": "xiaoming.wang@example.com",
        "address": "2316 E Union St Unit B, Seattle, WA 98122",
        "message": "Townhouse, tenant in place until June 🏙️",
        "timeline": "3-6 months",
        "property_type": "townhouse",
        "beds": 2,
        "baths": "1.5",
        "living_area_sqft": 1180,
        "year_built": 2007,
        "how_did_you_hear": "a friend",
    },
]


def seed(stdout: TextIO) -> None:
    group, _ = Group.objects.get_or_create(name=ACQUISITIONS_GROUP)
    demo_user = get_user_model().objects.filter(username="demo").first()
    if demo_user is not None:
        demo_user.groups.add(group)
    if Lead.objects.filter(source="Demo website form").exists():
        return
    key = ApiKey.objects.filter(name="Demo website form").first()
    if key is None:
        key, _ = api_key_create(name="Demo website form", scopes=["leads:create"], rate_limit=60)
    auth = AuthenticatedKey(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=tuple(key.scopes),
        allowed_origins=tuple(key.allowed_origins),
        rate_limit=key.rate_limit,
    )
    for data in DEMO_LEADS:
        result = lead_intake(data=data, api_key=auth, ip="127.0.0.1", user_agent="seed_demo")
        # Fan out now rather than waiting for a worker, so the demo's timelines are complete at once.
        lead_fan_out(lead_id=result.body["id"])
    stdout.write(f"Demo leads: {len(DEMO_LEADS)} (the demo login is in the {ACQUISITIONS_GROUP} group)")
