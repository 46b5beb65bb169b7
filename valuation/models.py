"""Valuation data: recorded sales, trained model versions, and the valuations of leads."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class UseType(models.TextChoices):
    SFR = "sfr", "Single-family"
    TOWNHOUSE = "townhouse", "Townhouse"


class Sale(models.Model):
    """One arm's-length sale (the shared CSV's columns; see valuation/data/README.md)."""

    sale_id = models.CharField(max_length=40, unique=True)
    pinx = models.CharField(max_length=20, db_index=True, help_text="parcel id; repeat sales share it")
    price = models.PositiveIntegerField()
    sale_date = models.DateField()
    use_type = models.CharField(max_length=10, choices=UseType.choices)
    area = models.PositiveSmallIntegerField(help_text="assessor area code")
    lot_sqft = models.PositiveIntegerField()
    waterfront = models.BooleanField(default=False)
    bldg_grade = models.PositiveSmallIntegerField(help_text="assessor building grade 1..13")
    living_area_sqft = models.PositiveIntegerField()
    beds = models.PositiveSmallIntegerField()
    baths = models.FloatField()
    year_built = models.PositiveSmallIntegerField()
    age = models.PositiveSmallIntegerField(help_text="age at sale, years")
    eff_age = models.PositiveSmallIntegerField(help_text="effective age after major remodel, years")
    latitude = models.FloatField()
    longitude = models.FloatField()
    imported_at = models.DateTimeField(default=timezone.now, help_text="first imported")

    class Meta:
        ordering = ["-sale_date", "sale_id"]
        indexes = [
            # as-of queries: sales before a date; location queries: a lat/lon bounding box.
            models.Index(fields=["sale_date"], name="valuation_sale_date_idx"),
            models.Index(fields=["latitude", "longitude", "sale_date"], name="valuation_sale_latlon_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(use_type__in=UseType.values), name="valuation_sale_use_type"),
        ]

    def __str__(self) -> str:
        return f"{self.sale_id} ${self.price:,} on {self.sale_date}"


class ModelVersion(models.Model):
    """A trained valuation model. The newest active one values everything; its id is in cache keys.

    The model is pickled into `blob` (the database is reachable from every worker machine, a file
    under LEADSITE_VAR_DIR would not be). Only our own training writes it.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    trained_from = models.DateField()
    trained_to = models.DateField()
    n_train = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict, help_text="walk-forward accuracy on the calibration months")
    params = models.JSONField(default=dict)
    training_seconds = models.FloatField(default=0)
    blob = models.BinaryField()
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"v{self.id} ({self.trained_from}..{self.trained_to}, {self.n_train} sales)"


class ValuationStatus(models.TextChoices):
    OK = "ok"
    INSUFFICIENT_DATA = "insufficient_data"


class Valuation(models.Model):
    """The valuation of a lead (one per lead; re-valuing replaces it)."""

    lead = models.OneToOneField("leads.Lead", on_delete=models.CASCADE, related_name="valuation")
    status = models.CharField(max_length=20, choices=ValuationStatus.choices)
    estimate = models.PositiveIntegerField(null=True, blank=True)
    low = models.PositiveIntegerField(null=True, blank=True)
    high = models.PositiveIntegerField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    as_of = models.DateField()
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL)
    location_precision = models.CharField(
        max_length=20, blank=True, help_text="how the lead was located when valued (zip_centroid: coarse)"
    )
    result = models.JSONField(default=dict, help_text="the full answer, as the API returns it")
    comps = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        if self.status == ValuationStatus.OK:
            return f"${self.estimate:,} (${self.low:,}–${self.high:,})"
        return "insufficient data"
