from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from notifications.models import Alert, Delivery, Payment, Route, StaffProfile, StripeEvent
from notifications.services import delivery_resend, test_message_send


@admin.register(Route)
class RouteAdmin(ModelAdmin):
    list_display = ("event_type", "channel", "is_active", "created_at")
    list_filter = ("event_type", "is_active")
    list_editable = ("is_active",)
    actions = ["send_test_message"]

    @admin.action(description="Send a test message to the selected routes' channels")
    def send_test_message(self, request: HttpRequest, queryset: QuerySet[Route]) -> None:
        channels = sorted(set(queryset.values_list("channel", flat=True)))
        for channel in channels:
            test_message_send(channel=channel, user=request.user.get_username())
        self.message_user(request, f"Test message queued for {', '.join(channels)}.", messages.SUCCESS)


@admin.register(Delivery)
class DeliveryAdmin(ModelAdmin):
    list_display = ("created_at", "event_type", "channel", "status", "attempts", "short_error", "sent_at", "lead_link")
    list_filter = ("status", "event_type", "channel", "created_at")
    search_fields = ("key", "=lead_id", "=ts", "last_error", "request_id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["resend"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="last error")
    def short_error(self, obj: Delivery) -> str:
        return obj.last_error if len(obj.last_error) <= 80 else obj.last_error[:80] + "…"

    @admin.display(description="lead")
    def lead_link(self, obj: Delivery) -> str:
        if not obj.lead_id:
            return "—"
        url = reverse("admin:leads_lead_change", args=[obj.lead_id])
        return format_html('<a href="{}" title="{}">open lead</a>', url, obj.lead_id)

    @admin.action(description="Resend (dead or failed deliveries get fresh attempts)")
    def resend(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        done = sum(delivery_resend(delivery_id=pk) for pk in queryset.values_list("id", flat=True))
        skipped = queryset.count() - done
        self.message_user(
            request,
            f"{done} delivery(ies) queued again"
            + (f"; {skipped} sent or sending ones left alone." if skipped else "."),
            messages.SUCCESS if done else messages.WARNING,
        )


@admin.register(StripeEvent)
class StripeEventAdmin(ModelAdmin):
    list_display = ("created_at", "type", "stripe_event_id", "payment")
    list_filter = ("type", "livemode")
    search_fields = ("=stripe_event_id",)
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in StripeEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ModelAdmin):
    list_display = ("created_at", "customer", "amount", "currency", "type", "stripe_event_id")
    list_filter = ("type", "currency", "livemode")
    search_fields = ("customer", "customer_id", "=stripe_event_id", "=payment_intent_id", "=invoice_id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Payment._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(ModelAdmin):
    list_display = ("last_seen", "severity", "source", "message", "count", "first_seen")
    list_filter = ("severity", "source")
    search_fields = ("message",)
    readonly_fields = [f.name for f in Alert._meta.fields]


@admin.register(StaffProfile)
class StaffProfileAdmin(ModelAdmin):
    list_display = ("user", "slack_user_id")
    search_fields = ("user__username", "user__email", "slack_user_id")
    autocomplete_fields = ("user",)
