"""Offers on leads, their grade records (history is kept), status changes and trained graders."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class OfferStatus(models.TextChoices):
    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CLOSED = "closed"
    LOST = "lost"


class Grade(models.TextChoices):
    A = "A"
    B = "B"
    C = "C"
    D = "D"
    F = "F"


class Offer(models.Model):
    """A cash offer to a seller. The latest grade is copied here (list filters, the dashboard);
    every grade ever given is an OfferGrade row."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="offers")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    repairs = models.DecimalField(max_digits=12, decimal_places=2)
    repairs_estimated = models.BooleanField(default=False)
    arv = models.DecimalField(max_digits=12, decimal_places=2, help_text="after-repair value")
    arv_low = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    arv_high = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    arv_source = models.CharField(max_length=20, help_text="valuation (the lead's) or given (by the rep)")
    ratio = models.DecimalField(
        max_digits=4, decimal_places=3, null=True, blank=True, help_text="per-offer override of GRADING_RATIO"
    )
    status = models.CharField(max_length=10, choices=OfferStatus.choices, default=OfferStatus.DRAFT)
    status_changed_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True, help_text="when the seller accepted (kept if lost later)")
    grade = models.CharField(max_length=1, choices=Grade.choices, blank=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_by_name = models.CharField(max_length=150, blank=True, help_text="the staff user or API key")
    synthetic = models.BooleanField(
        default=False, help_text="generated demo history (manage.py generate_offer_history), not a real offer"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-created_at"]),
            models.Index(fields=["created_at", "grade"]),
            models.Index(
                fields=["status_changed_at"],
                name="grading_offer_outcome_idx",
                condition=Q(status__in=["accepted", "rejected", "closed", "lost"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="grading_offer_amount_positive"),
            models.CheckConstraint(condition=Q(arv__gt=0), name="grading_offer_arv_positive"),
            models.CheckConstraint(condition=Q(repairs__gte=0), name="grading_offer_repairs_not_negative"),
        ]

    def __str__(self) -> str:
        grade = f" {self.grade}" if self.grade else ""
        return f"${self.amount:,.0f}{grade} ({self.status})"


class GraderModel(models.Model):
    """One `train_grader` run: its validation against the rules-only baseline, and the fitted
    classifier when it was adopted. The newest row decides: adopted -> its chance is used."""

    created_at = models.DateTimeField(auto_now_add=True)
    adopted = models.BooleanField(default=False)
    reason = models.CharField(max_length=500)
    n_outcomes = models.PositiveIntegerField(default=0)
    n_train = models.PositiveIntegerField(default=0)
    n_valid = models.PositiveIntegerField(default=0)
    train_until = models.DateTimeField(null=True, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    features = models.JSONField(default=list, blank=True)
    synthetic_outcomes = models.PositiveIntegerField(default=0, help_text="how many of the outcomes were synthetic")
    # Pickled scikit-learn classifier; only our own training writes it.
    blob = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"grader v{self.id} ({'adopted' if self.adopted else 'not used'})"


class OfferGrade(models.Model):
    """One grading of an offer, with everything needed to explain it later."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="grades")
    created_at = models.DateTimeField(auto_now_add=True)
    grader_version = models.CharField(max_length=50, help_text="rules version, plus the learned model if used")
    grader_model = models.ForeignKey(GraderModel, null=True, blank=True, on_delete=models.SET_NULL)
    grade = models.CharField(max_length=1, choices=Grade.choices)
    score = models.PositiveSmallIntegerField()
    recommendation = models.CharField(max_length=10)
    counter_offer = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    reasons = models.JSONField(default=list)
    numbers = models.JSONField(default=dict)
    inputs = models.JSONField(default=dict, help_text="every input and setting the grade was computed from")
    acceptance = models.JSONField(default=dict)
    repairs_estimate = models.JSONField(null=True, blank=True, help_text="how repairs were estimated, if they were")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["offer", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.grade} ({self.score}) by {self.grader_version}"


class OfferStatusChange(models.Model):
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10, choices=OfferStatus.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '·'} → {self.to_status} at {self.at:%Y-%m-%d %H:%M}"
