"""Where django-unfold 0.91 spends a busy list's or lead page's time on output that does not change, and
the same output computed once instead. Every replacement returns exactly what unfold returns
(tests/backoffice/test_unfold_speed.py compares them byte for byte); `install()` puts them in place
(leadsite.admin_site calls it once, at import).

`bench/profile_admin.py` times the pages in-process (CPU per request); README "Back office" has the numbers.

- Column headers (sort links, query strings): unfold recomputes all of them for every row. They depend
  only on the ChangeList: computed once per list.
- A row's cells (`items_for_result`): per cell, unfold resolves the column (a FieldDoesNotExist raised and
  caught for every method column), builds and joins its ~25 CSS classes, and escapes its header again.
  All of that depends on the column only: planned once per list, then each cell is its value, the
  display unfold would give it, and one string join.
- A row's action checkbox: a widget template rendered per row where only the pk changes; a boolean
  column's icon: a template rendered per row with three possible outputs. Rendered once per process and
  language by unfold's own templates, then reused.
- A change form's row: unfold builds every field of it once more (for a read-only field, resolving its
  value) to look for an inline's hidden ordering field, on the main form too.
- The sidebar's links (unfold/helpers/app_list.html, ~1.5 ms a page): the same HTML for every page with
  the same links, permissions and active item. Rendered once per distinct set (`sidebar_app_list`, through
  templates/unfold/helpers/navigation.html), unless an item has a badge, a link callback or sub-items.
- A read-only field on a change page: unfold's field_readonly_value.html asks for `field.contents` three
  times, and each call recomputes it (for a ModelAdmin method, calls it again). The field object lives
  for one render of one form: its contents are computed once.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.contrib.admin.templatetags.admin_list import _coerce_field_name
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import FieldIsAForeignKeyColumnName, _get_non_gfk_field, lookup_field
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from django.forms import ModelForm
from django.urls import NoReverseMatch
from django.utils import translation
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _
from unfold import admin as unfold_admin
from unfold import utils as unfold_utils
from unfold.fields import UnfoldAdminReadonlyField
from unfold.templatetags import unfold as unfold_tags
from unfold.templatetags import unfold_list

_unfold_result_headers = unfold_list.result_headers
_unfold_items_for_result = unfold_list.items_for_result
_unfold_boolean_icon = unfold_utils._boolean_icon
_unfold_readonly_contents = UnfoldAdminReadonlyField.contents
_UNFOLD_CHECKBOX = unfold_admin.checkbox


# --- column headers -----------------------------------------------------------------------------


def result_headers_once(cl: Any) -> Iterator[dict[str, Any]]:
    headers = cl.__dict__.get("_leadsite_result_headers")
    if headers is None:
        headers = cl.__dict__["_leadsite_result_headers"] = list(_unfold_result_headers(cl))
    return iter(headers)


# --- a row's cells ------------------------------------------------------------------------------


@dataclass
class _Column:
    name: Any  # a list_display entry: a name or a callable
    index: int
    label: str  # the data-label attribute's value, escaped
    kind: str  # "field" (a model field), "admin" (a ModelAdmin attribute), "lookup" (anything else)
    field: models.Field | None
    attr: Any  # the bound ModelAdmin method for "admin"
    link: bool
    tag: str
    classes: list[str]
    hidden: bool  # unfold's ordering field, hidden
    prefixes: dict[tuple[bool, bool], str]  # the cell's opening tag by (checkbox classes, nowrap)
    link_head: str | None = None  # a link cell up to its text, with _URL_SLOT for the pk


def _plan(cl: Any) -> list[_Column]:
    plan = cl.__dict__.get("_leadsite_row_plan")
    if plan is not None:
        return plan
    model_admin = cl.model_admin
    headers = list(unfold_list.result_headers(cl))
    ordering_field = getattr(model_admin, "ordering_field", None)
    hide_ordering_field = getattr(model_admin, "hide_ordering_field", False)
    plan, first = [], True
    for index, name in enumerate(cl.list_display):
        field, attr, kind = None, None, "lookup"
        try:
            field, kind = _get_non_gfk_field(cl.lookup_opts, name), "field"
        except (FieldDoesNotExist, FieldIsAForeignKeyColumnName):
            if not callable(name) and name != "__str__" and hasattr(model_admin, name):
                attr, kind = getattr(model_admin, name), "admin"
        # unfold's link_in_col: which column links to the object, decided by the columns before it only.
        if cl.list_display_links is None:
            link = False
        elif first and not cl.list_display_links:
            link = True
        else:
            link = name in cl.list_display_links
        tag = "th" if link and first else "td"
        if link:
            first = False
        label = headers[index]["text"] if link or index != 0 else _("Select record")
        plan.append(
            _Column(
                name=name,
                index=index,
                label=conditional_escape(label),
                kind=kind,
                field=field,
                attr=attr,
                link=link,
                tag=tag,
                classes=[f"field-{_coerce_field_name(name, index)}", *unfold_list.ROW_CLASSES],
                hidden=bool(ordering_field and name == ordering_field and hide_ordering_field),
                prefixes={},
            )
        )
    cl.__dict__["_leadsite_row_plan"] = plan
    return plan


def _cell(column: _Column, result: Any, empty: str, model_admin: Any) -> tuple[Any, list[str], bool]:
    """(what the cell shows, its classes, nowrap), as unfold's items_for_result computes them."""
    classes = column.classes
    try:
        if column.kind == "field":
            f, attr, value = column.field, None, getattr(result, column.name)
        elif column.kind == "admin":
            f, attr, value = None, column.attr, column.attr(result)
        else:
            f, attr, value = lookup_field(column.name, result, model_admin)
    except ObjectDoesNotExist:
        return empty, classes, False
    empty = getattr(attr, "empty_value_display", empty)
    if f is None or f.auto_created:
        if column.name == "action_checkbox":
            classes = unfold_list.CHECKBOX_CLASSES
        if getattr(attr, "label", False):
            shown = unfold_list.display_for_label(value, empty, attr.label)
        elif getattr(attr, "dropdown", False):
            shown = unfold_list.display_for_dropdown(result, column.name, value, empty)
        elif getattr(attr, "header", False):
            shown = unfold_list.display_for_header(value, empty)
        else:
            shown = unfold_list.display_for_value(value, empty, getattr(attr, "boolean", False))
        return shown, classes, isinstance(value, datetime.date | datetime.time)
    if isinstance(f.remote_field, models.ManyToOneRel):
        related = getattr(result, f.name)
        shown = empty if related is None else related
    else:
        shown = unfold_list.display_for_field(value, f, empty)
    return shown, classes, isinstance(f, models.DateField | models.TimeField | models.ForeignKey)


def items_for_result_planned(cl: Any, result: models.Model, form: ModelForm | None) -> Iterator[SafeString]:
    if form is not None:  # list_editable rows: unfold's own path
        yield from _unfold_items_for_result(cl, result, form)
        return
    model_admin = cl.model_admin
    empty = model_admin.get_empty_value_display()
    for column in _plan(cl):
        shown, classes, nowrap = _cell(column, result, empty, model_admin)
        if column.link:
            yield _link_cell(cl, column, result, shown, classes, nowrap)
            continue
        key = (classes is not column.classes, nowrap)
        prefix = column.prefixes.get(key)
        if prefix is None:
            names = [*classes, "nowrap"] if nowrap else list(classes)
            if column.hidden:
                names.append("!hidden")
            prefix = column.prefixes[key] = f'<td class="{" ".join(names)}" data-label="{column.label}">'
        yield mark_safe(prefix + conditional_escape(shown) + "</td>")  # noqa: S308 - shown escaped


_URL_PK = re.compile(r"[A-Za-z0-9-]+\Z")  # a pk that quote(), reverse() and escaping all leave as it is
_URL_SLOT = "leadsite0pk0slot"


def _link_cell(cl: Any, column: _Column, result: Any, shown: Any, classes: list[str], nowrap: bool) -> SafeString:
    # The link's URL (reverse, then the list's filters preserved: a URL resolve) differs between rows
    # only by the pk: built once with a slot for it.
    pk = str(getattr(result, cl.pk_attname))
    if cl.is_popup or nowrap or classes is not column.classes or not _URL_PK.match(pk):
        return _link_cell_built(cl, column, result, shown, classes, nowrap)
    head = column.link_head
    if head is None:
        slot = SimpleNamespace(**{cl.pk_attname: _URL_SLOT})
        url = add_preserved_filters(
            {"preserved_filters": cl.preserved_filters, "opts": cl.opts}, cl.url_for_result(slot)
        )
        head = column.link_head = format_html(
            '<{}{} data-label="{}"><a href="{}" class="{}" >',
            column.tag,
            mark_safe(f' class="{" ".join(classes)}"'),  # noqa: S308 - our own class names
            column.label,
            url,
            " ".join(unfold_list.LINK_CLASSES),
        )
    return mark_safe(f"{head.replace(_URL_SLOT, pk)}{conditional_escape(shown)}</a></{column.tag}>")  # noqa: S308


def _link_cell_built(cl: Any, column: _Column, result: Any, shown: Any, classes: list[str], nowrap: bool) -> SafeString:
    try:
        url = cl.url_for_result(result)
    except NoReverseMatch:
        link_or_text = shown
    else:
        url = add_preserved_filters({"preserved_filters": cl.preserved_filters, "opts": cl.opts}, url)
        value = result.serializable_value(str(cl.to_field) if cl.to_field else cl.lookup_opts.pk.attname)
        link_or_text = format_html(
            '<a href="{}" class="{}" {}>{}</a>',
            url,
            " ".join(unfold_list.LINK_CLASSES),
            format_html(' data-popup-opener="{}"', value) if cl.is_popup else "",
            shown,
        )
    names = [*classes, "nowrap"] if nowrap else classes
    row_class = mark_safe(f' class="{" ".join(names)}"')  # noqa: S308 - our own class names
    return format_html('<{}{} data-label="{}">{}</{}>', column.tag, row_class, column.label, link_or_text, column.tag)


# --- the action checkbox and boolean icons ------------------------------------------------------

_PK_SLOT = "leadsite-pk-slot"


class PrerenderedCheckbox:
    """unfold.admin.checkbox (the rows' action checkbox), rendered once per name and language."""

    def __init__(self, widget: Any) -> None:
        self.widget = widget
        self.rendered: dict[tuple[str, str | None], str] = {}

    def render(self, name: str, value: Any, attrs: dict | None = None, renderer: Any = None) -> SafeString:
        if attrs is not None or renderer is not None or not isinstance(value, str):
            return self.widget.render(name, value, attrs, renderer)
        key = (name, translation.get_language())
        html = self.rendered.get(key)
        if html is None:
            html = self.rendered[key] = str(self.widget.render(name, _PK_SLOT))
        return mark_safe(html.replace(_PK_SLOT, conditional_escape(value)))  # noqa: S308 - value escaped


_boolean_icons: dict[tuple[str, str | None], str] = {}


def boolean_icon_once(value: Any) -> str:
    # unfold/helpers/boolean.html knows three states: unknown ('' or None), true, false.
    state = "unknown" if value == "" or value is None else ("true" if value else "false")
    key = (state, translation.get_language())
    html = _boolean_icons.get(key)
    if html is None:
        html = _boolean_icons[key] = _unfold_boolean_icon({"unknown": None, "true": True, "false": False}[state])
    return html


# --- a read-only field's contents ---------------------------------------------------------------


def readonly_contents_once(self: UnfoldAdminReadonlyField) -> SafeString:
    contents = self.__dict__.get("_leadsite_contents")
    if contents is None:
        contents = self.__dict__["_leadsite_contents"] = _unfold_readonly_contents(self)
    return contents


# --- a change form's rows ----------------------------------------------------------------------


def fieldset_row_classes(context: Any) -> str:
    """unfold's {% fieldset_row_classes %} iterates the row's fields (building each field again: for a
    read-only one, resolving its value) to find an inline's hidden ordering field, also on the main form,
    which has none. Only an inline's rows are iterated here; the classes are unfold's."""
    classes = ["form-row", "field-row", "group/row"]
    formset = context.get("inline_admin_formset", None)
    line = context.get("line") or []
    if formset:
        ordering_field = getattr(formset.opts, "ordering_field", None)
        hide = getattr(formset.opts, "hide_ordering_field", False)
        for field in line:
            if hasattr(field.field, "name") and field.field.name == ordering_field and hide:
                classes.append("hidden")
    if len(line.fields) > 1:
        classes.extend(["grid", f"lg:grid-cols-{len(line.fields)}"])
    if not line.has_visible_field:
        classes.append("hidden")
    return " ".join(set(classes))


# --- the sidebar's links -------------------------------------------------------------------------

_SIDEBAR_GROUP_KEYS = frozenset({"title", "items", "collapsible", "separator"})
_SIDEBAR_ITEM_KEYS = frozenset({"title", "icon", "link", "permission", "active", "has_permission"})
_SIDEBAR_MAX = 1_000  # distinct sidebars kept (per user group of permissions x active item x language)
_sidebar_html: dict[tuple, SafeString] = {}


def _sidebar_key(context: Any) -> tuple | None:
    """Everything unfold/helpers/app_list.html reads, or None when it reads more (a badge, a link callback,
    sub-items, "All applications")."""
    if context.get("sidebar_show_all_applications"):
        return None
    groups = []
    for group in context.get("sidebar_navigation") or ():
        if not _SIDEBAR_GROUP_KEYS.issuperset(group):
            return None
        items = []
        for item in group.get("items") or ():
            if not _SIDEBAR_ITEM_KEYS.issuperset(item):
                return None
            link = item.get("link")
            if not isinstance(link, str | None):
                return None
            items.append(
                (
                    str(item.get("title")),
                    link,
                    item.get("icon"),
                    bool(item.get("active")),
                    bool(item.get("has_permission")),
                )
            )
        groups.append(
            (str(group.get("title", "")), bool(group.get("collapsible")), bool(group.get("separator")), tuple(items))
        )
    return translation.get_language(), tuple(groups)


def sidebar_app_list(context: Any) -> SafeString:
    """unfold's `{% include "unfold/helpers/app_list.html" with app_list=available_apps %}`, its output kept
    per distinct input (`_sidebar_key`)."""
    key = _sidebar_key(context)
    html = _sidebar_html.get(key) if key is not None else None
    if html is None:
        template = context.template.engine.get_template("unfold/helpers/app_list.html")
        with context.push(app_list=context.get("available_apps")):
            html = mark_safe(template.render(context))  # noqa: S308 - a template's output
        if key is not None:
            if len(_sidebar_html) >= _SIDEBAR_MAX:
                _sidebar_html.clear()
            _sidebar_html[key] = html
    return html


def install() -> None:
    unfold_list.result_headers = result_headers_once
    unfold_list.items_for_result = items_for_result_planned
    unfold_admin.checkbox = PrerenderedCheckbox(_UNFOLD_CHECKBOX)
    unfold_utils._boolean_icon = boolean_icon_once
    UnfoldAdminReadonlyField.contents = readonly_contents_once
    unfold_tags.register.simple_tag(takes_context=True, name="fieldset_row_classes")(fieldset_row_classes)
