"""API keys: how web forms and other services authenticate (see leadsite.auth)."""

from __future__ import annotations

from django.db import models


class Scope(models.TextChoices):
    LEADS_CREATE = "leads:create"
    LEADS_READ = "leads:read"
    LEADS_WRITE = "leads:write"
    OFFERS_WRITE = "offers:write"
    VALUATIONS_READ = "valuations:read"
    LOGS_WRITE = "logs:write"
    LOGS_READ = "logs:read"
    ALERTS_CREATE = "alerts:create"


class ApiKey(models.Model):
    """A key is `ls_<prefix>_<secret>`; only the prefix and a SHA-256 of the whole key are stored.

    The secret is 32 random bytes, so a fast hash is as safe as a slow one here and keeps auth
    cheap on every request.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, help_text="List of scopes, e.g. leads:create")
    allowed_origins = models.JSONField(
        default=list, blank=True, help_text="Browser origins allowed to use this key, e.g. https://example.com"
    )
    rate_limit = models.PositiveIntegerField(default=60, help_text="Requests per minute; 0 = unlimited")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
