"""The HTTP trigger: `POST /run-etl` and `POST /api/runs/` start a run and answer 202 at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from ingestion.sources import source_names
from ingestion.trigger import LaunchFailed, SourceNotConfigured, start_run
from runs.models import RunAlreadyActive
from runs.views import RunViewSet

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission


class TriggerSerializer(serializers.Serializer[Any]):
    # A declared field, not Field.source: the serializer's metaclass takes it off the class.
    source = serializers.ChoiceField(choices=source_names())  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The registry as it is now (settings.ETL_SOURCES), not as it was at import.
        field = cast(serializers.ChoiceField, self.fields["source"])
        field.choices = source_names()


class TriggerAcceptedSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(help_text="The new run; follow it at `url` or in /runs.")
    source = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.source
    status = serializers.CharField()
    url = serializers.URLField()


class BusySerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()
    run = serializers.IntegerField(help_text="The run in progress.")
    request_id = serializers.CharField()


def _error(request: Request, code: int, detail: str, **extra: object) -> Response:
    body = {"detail": detail, **extra, "request_id": getattr(request, "request_id", "")}
    return Response(body, status=code)


@extend_schema(tags=["runs"])
class RunTriggerViewSet(RunViewSet):
    """Runs, plus `POST` to start one (a DRF token is required)."""

    # THROTTLE_RATES["trigger"] limits starting runs (config.throttling.ScopedThrottle).
    throttle_scope = "trigger"

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        # POST takes a source, not a run: also what the browsable API's form shows.
        if self.request is not None and self.request.method == "POST":
            return TriggerSerializer
        return super().get_serializer_class()

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        if self.action == "create":
            return [IsAuthenticated()]
        return super().get_permissions()

    @extend_schema(
        request=TriggerSerializer,
        responses={
            202: TriggerAcceptedSerializer,
            409: OpenApiResponse(BusySerializer, description="That source is already running."),
            403: OpenApiResponse(description="Authenticated but not allowed."),
            503: OpenApiResponse(description="The ingest process could not be started."),
        },
    )
    def create(self, request: Request) -> Response:
        """Start an ETL run of `source`; it continues after this response (202)."""
        body = TriggerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        source = body.validated_data["source"]
        try:
            run = start_run(source=source)
        except RunAlreadyActive as exc:
            busy = exc.run.pk if exc.run is not None else None
            return _error(request, status.HTTP_409_CONFLICT, str(exc), run=busy)
        except SourceNotConfigured as exc:
            raise serializers.ValidationError(
                {"source": [f"{source} is not configured: {exc}"]}
            ) from None
        except LaunchFailed as exc:
            return _error(request, status.HTTP_503_SERVICE_UNAVAILABLE, f"not started: {exc}")
        url = reverse("run-detail", kwargs={"pk": run.pk}, request=request)
        accepted = {"id": run.pk, "source": run.source, "status": run.status, "url": url}
        return Response(accepted, status=status.HTTP_202_ACCEPTED, headers={"Location": url})
