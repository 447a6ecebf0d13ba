"""Filter pieces shared by the apps' FilterSets: strict parsing, so bad input is a 400.

- `UtcDateTimeFilter`: ISO 8601 with any UTC offset (or `Z`; none means UTC), converted to UTC
  before it reaches a query.
- `EnumFilter`: one of a fixed set of values; anything else is refused with the allowed ones
  listed. `SourceFilter` is the one whose values are the ingestion sources' names.
- `FilterSet`: django-filter's FilterSet, building its form class once and refusing a parameter
  given with an empty value (`?verified=`): it would otherwise mean "no filter", silently.
- `FilterBackend`: django-filter's backend, skipping the form when no filter parameter is given.
- `KeysetOrderingFilter`: `?ordering=` with exactly one allowed field, `-` for descending; an
  unknown field is refused (DRF's OrderingFilter would silently ignore it).
- `refuse_blank`: the empty-value rule for parameters outside a FilterSet (paging, ordering).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeVar, cast

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from django_filters.fields import ChoiceField as FilterChoiceField
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.views import APIView

# An unencoded '+' in a query string arrives as a space: "2024-05-01T12:00:00 02:00".
_SPACE_FOR_PLUS = re.compile(r"^(.*T[0-9:.,]+) ([0-9]{2}(?::?[0-9]{2})?)$")

# The largest id a bigint (BigAutoField) holds: a larger one in a query is refused, not sent.
MAX_ID = 2**63 - 1
# An id in a URL: a longer number cannot be a bigint, so the URL does not match (a JSON 404).
ID_PATTERN = r"[0-9]{1,18}"

BLANK_MESSAGE = "This parameter is empty: give it a value or leave it out."

_M = TypeVar("_M", bound=Model)
_R = TypeVar("_R")


def is_blank(raw: Any) -> bool:
    return raw is not None and not str(raw).strip()


def refuse_blank(name: str, raw: str | None) -> None:
    """A parameter given with nothing in it (`?limit=`) most likely lost its value on the way:
    report it rather than quietly serve the default."""
    if is_blank(raw):
        raise ValidationError({name: [BLANK_MESSAGE]})


def source_choices() -> list[tuple[str, str]]:
    """The sources' names, from their registry in settings (`ETL_SOURCES`), read when a request
    comes."""
    return [(name, name) for name in settings.ETL_SOURCES]


class UtcDateTimeField(forms.Field):
    default_error_messages = {
        "invalid": "Enter an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z or "
        "2024-05-01T14:00:00+02:00.",
        "range": "Date-time out of range.",
    }

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            parsed = value
        else:
            text = _SPACE_FOR_PLUS.sub(r"\1+\2", str(value).strip())
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise DjangoValidationError(
                    self.error_messages["invalid"], code="invalid"
                ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise DjangoValidationError(self.error_messages["range"], code="range") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """Documented as an ISO 8601 date-time; parsed by `UtcDateTimeField`."""

    # The stubs narrow field_class to IsoDateTimeField; django-filter takes any form field.
    field_class = UtcDateTimeField  # type: ignore[assignment]


class KeysetOrdered(Protocol):
    """What `KeysetOrderingFilter` reads from its view: the default and the allowed fields."""

    ordering: str
    ordering_fields: Sequence[str]


class KeysetOrderingFilter(OrderingFilter):
    """One ordering field from the view's `ordering_fields`; the id breaks ties."""

    def get_keyset_ordering(self, request: Request, view: APIView) -> str:
        keyset = cast(KeysetOrdered, view)
        raw = request.query_params.get(self.ordering_param)
        if raw is None:
            return keyset.ordering
        refuse_blank(self.ordering_param, raw)
        raw = raw.strip()
        allowed = list(keyset.ordering_fields)
        if raw.lstrip("-") not in allowed:
            choices = ", ".join(f"{name}, -{name}" for name in allowed)
            raise ValidationError({self.ordering_param: [f"Choose one of: {choices}."]})
        return raw

    def filter_queryset(
        self, request: Request, queryset: QuerySet[_M, _R], view: APIView
    ) -> QuerySet[_M, _R]:
        ordering = self.get_keyset_ordering(request, view)
        sign = "-" if ordering.startswith("-") else ""
        return queryset.order_by(ordering, f"{sign}id")

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        keyset = cast(KeysetOrdered, view)
        values = [v for name in keyset.ordering_fields for v in (name, f"-{name}")]
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": f"Sort order (default `{keyset.ordering}`); ties break on id.",
                "schema": {"type": "string", "enum": values},
            }
        ]


class EnumField(FilterChoiceField):
    """django-filter's choice field, whose refusal lists the values it accepts."""

    def validate(self, value: Any) -> None:
        try:
            super().validate(value)
        except DjangoValidationError:
            # The empty choice is django-filter's "any" entry for the HTML form, not a value.
            # The stubs type the choices as whatever the setter accepts; read back, they are
            # (value, label) pairs.
            choices = cast("Iterable[tuple[Any, Any]]", self.choices)
            allowed = ", ".join(str(key) for key, _ in choices if key != "")
            raise DjangoValidationError(
                f"Choose one of: {allowed}.", code="invalid_choice"
            ) from None


class EnumFilter(django_filters.ChoiceFilter):
    field_class = EnumField


class SourceFilter(EnumFilter):
    """A source name, e.g. csv or coingecko."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("choices", source_choices)
        super().__init__(*args, **kwargs)


class RefuseBlankForm(forms.Form):
    """The FilterSets' form: a parameter present but empty is an error, not "no filter"."""

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        for name in self.fields:
            if is_blank(self.data.get(name)):
                # The one message that says what is wrong, in place of the field's own
                # ("Enter a number." for a value of a few spaces).
                self.errors.pop(name, None)
                self.add_error(name, BLANK_MESSAGE)
        return cleaned


class FilterBackend(DjangoFilterBackend):
    """Without any of the FilterSet's parameters there is nothing to validate or filter: skip
    building its form, a fair share of an unfiltered list request's time."""

    # django-filter's stubs type the request as Django's HttpRequest; DRF passes its Request.
    def filter_queryset(  # type: ignore[override]
        self, request: Request, queryset: QuerySet[Any], view: APIView
    ) -> QuerySet[Any]:
        filterset_class = getattr(view, "filterset_class", None)
        params = request.query_params
        if filterset_class is not None and not any(
            n in params for n in filterset_class.base_filters
        ):
            return queryset
        return super().filter_queryset(request, queryset, view)

    # As filter_queryset: a DRF Request, not the HttpRequest of django-filter's stubs.
    def get_filterset_kwargs(  # type: ignore[override]
        self, request: Request, queryset: QuerySet[Any], view: APIView
    ) -> dict[str, Any]:
        kwargs = super().get_filterset_kwargs(request, queryset, view)
        renderer = getattr(request, "accepted_renderer", None)
        if renderer is not None and renderer.format == "api":
            # The browsable API's filter form submits every field, the ones left blank too: from
            # that form, and only there, blank means "any".
            data = kwargs["data"].copy()
            for name in [n for n, value in data.items() if is_blank(value)]:
                del data[name]
            kwargs["data"] = data
        return kwargs


class _ShallowCopies(dict[str, django_filters.Filter]):
    """A FilterSet's `base_filters`, which django-filter deep-copies for every instance: a
    shallow copy of each filter is enough, as only `model` and `parent`, which the FilterSet
    sets on its copies, differ between requests."""

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, django_filters.Filter]:
        copies = {}
        for name, base in self.items():
            filter_ = copy.copy(base)
            if base.method is not None:
                # A method filter's callable refers to its filter: bind it to this copy.
                filter_.method = base.method
            copies[name] = filter_
        return copies


class FilterSet(django_filters.FilterSet):
    """A FilterSet that costs less per request than django-filter's own.

    - Its filters are copied shallowly (`_ShallowCopies`): django-filter deep-copies every
      filter, its form field, widget and lookup arguments included, for each request.
    - Its form class is built once per class: django-filter derives a new one (fields, labels)
      each time a FilterSet is created, but ours depend on nothing but the class, and a form
      instance copies its fields anyway.
    - Its form refuses a parameter given empty (`RefuseBlankForm`), whatever `Meta.form` says.
    """

    _form_class: ClassVar[type[forms.Form]]

    # The stubs say OrderedDict; django-filter only needs a mapping (a plain dict keeps order).
    @classmethod
    def get_filters(cls) -> dict[str, django_filters.Filter]:  # type: ignore[override]
        return _ShallowCopies(super().get_filters())

    def get_form_class(self) -> type[forms.Form]:
        cls = type(self)
        form_class = cls.__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            if not issubclass(form_class, RefuseBlankForm):
                form_class = type(form_class.__name__, (RefuseBlankForm, form_class), {})
            cls._form_class = form_class
        return form_class
