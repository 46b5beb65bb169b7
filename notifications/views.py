"""POST /slack/interactions: Slack's interactivity request URL (form-encoded, signed, not under /api/)."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from notifications import slack
from notifications.interactions import interaction_handle, parse_form_payload

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def slack_interactions(request: HttpRequest) -> HttpResponse:
    # Verify over the raw body before parsing anything (bad or older than 5 minutes: 401).
    if not slack.verify_request(body=request.body, headers=request.headers):
        return JsonResponse({"detail": "invalid Slack signature"}, status=401)
    try:
        payload = parse_form_payload(request.POST.get("payload", ""))
    except ValueError:
        return JsonResponse({"detail": "payload must be a JSON object"}, status=400)
    reply = interaction_handle(payload=payload)
    if reply is None:
        return HttpResponse(status=200)
    # Slack ignores the body of a block_actions answer (the same text also goes to response_url);
    # it is kept so the answer is visible to anyone calling this by hand.
    return JsonResponse({"response_type": "ephemeral", "replace_original": False, "text": reply.text})
