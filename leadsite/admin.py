from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget, UnfoldAdminTextareaWidget

from leadsite.models import ApiKey, Scope
from leadsite.services import api_key_create, api_key_invalidate


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=UnfoldAdminCheckboxSelectMultipleWidget)
    allowed_origins = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="One browser origin per line (https://example.com). Empty: server-to-server only.",
    )

    class Meta:
        model = ApiKey
        fields = ("name", "scopes", "allowed_origins", "rate_limit", "is_active")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["allowed_origins"] = "\n".join(self.instance.allowed_origins)

    def clean_allowed_origins(self) -> list[str]:
        return [line.strip().rstrip("/") for line in self.cleaned_data["allowed_origins"].splitlines() if line.strip()]


@admin.register(ApiKey)
class ApiKeyAdmin(ModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "prefix", "scope_list", "rate_limit", "is_active", "last_used_at", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at")

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: ApiKeyForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            api_key_invalidate(prefix=obj.prefix)
            return
        key, raw_key = api_key_create(
            name=obj.name,
            scopes=form.cleaned_data["scopes"],
            allowed_origins=form.cleaned_data["allowed_origins"],
            rate_limit=obj.rate_limit,
        )
        if not obj.is_active:
            ApiKey.objects.filter(pk=key.pk).update(is_active=False)
        obj.pk, obj.prefix, obj.hashed_key = key.pk, key.prefix, key.hashed_key
        messages.warning(request, f"New API key for {key.name}: {raw_key} — copy it now, it will not be shown again.")

    def delete_model(self, request: HttpRequest, obj: ApiKey) -> None:
        super().delete_model(request, obj)
        api_key_invalidate(prefix=obj.prefix)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        prefixes = list(queryset.values_list("prefix", flat=True))
        super().delete_queryset(request, queryset)
        for prefix in prefixes:
            api_key_invalidate(prefix=prefix)


# Users and groups on the same theme as everything else.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass
