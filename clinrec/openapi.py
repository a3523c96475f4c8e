"""OpenAPI helpers: the error responses every endpoint documents, and the schema of the error bodies."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """`{"detail": "..."}`: what went wrong, for 401, 403, 404 and 409."""

    detail = serializers.CharField()


class ValidationErrorSerializer(serializers.Serializer):
    """`{"<field>": ["<problem>", ...]}`: one entry per invalid field (`non_field_errors` for the whole body)."""

    field_name = serializers.ListField(child=serializers.CharField(), required=False)


class BlockedDeleteSerializer(serializers.Serializer):
    """409 for a delete refused because links still point at the object."""

    detail = serializers.CharField()
    code = serializers.CharField()
    blocked_by = serializers.DictField(help_text="Per kind of record: `{count, ids}` of what blocks the delete.")


UNAUTHORIZED = OpenApiResponse(ErrorSerializer, description="No valid token (send `Authorization: Bearer <access>`).")
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="Your role does not allow this.")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such object.")
BAD_REQUEST = OpenApiResponse(ValidationErrorSerializer, description="Invalid input; the body names each field.")
CONFLICT = OpenApiResponse(BlockedDeleteSerializer, description="Other records still point at this one.")

READ_ERRORS = {401: UNAUTHORIZED, 403: FORBIDDEN}
EXPAND_PARAMETER_DOC = "Comma-separated related objects to nest instead of their ids: {}."


def resource_schema(noun: str, plural: str, *, expandable: tuple[str, ...] = (), detail_responses: dict | None = None):
    """Class decorator for a ResourceViewSet: summaries, the success body and the error responses of each action.

    An explicit `responses` replaces drf-spectacular's default one, so the success response is listed here
    too, from the viewset's serializer (lists keep their paginated envelope). `detail_responses` adds
    responses to every action on one object (e.g. patients' 410 for a merged record).
    """
    extra = detail_responses or {}
    parameters = (
        [OpenApiParameter("expand", str, description=EXPAND_PARAMETER_DOC.format(", ".join(expandable)))]
        if expandable
        else []
    )

    def decorate(viewset):
        serializer = viewset.serializer_class
        return extend_schema_view(
            list=extend_schema(
                summary=f"List {plural}",
                parameters=parameters,
                responses={200: serializer(many=True), **READ_ERRORS, 400: BAD_REQUEST},
            ),
            retrieve=extend_schema(
                summary=f"Get one {noun}",
                parameters=parameters,
                responses={200: serializer, **READ_ERRORS, 400: BAD_REQUEST, 404: NOT_FOUND, **extra},
            ),
            create=extend_schema(
                summary=f"Create a {noun}",
                responses={201: serializer, **READ_ERRORS, 400: BAD_REQUEST, 409: CONFLICT},
            ),
            update=extend_schema(
                summary=f"Replace a {noun}",
                responses={200: serializer, **READ_ERRORS, 400: BAD_REQUEST, 404: NOT_FOUND, 409: CONFLICT, **extra},
            ),
            partial_update=extend_schema(
                summary=f"Update part of a {noun}",
                responses={200: serializer, **READ_ERRORS, 400: BAD_REQUEST, 404: NOT_FOUND, 409: CONFLICT, **extra},
            ),
            destroy=extend_schema(
                summary=f"Delete a {noun}",
                description="Refused with 409 while other records still point at it; nothing is deleted then.",
                responses={204: None, **READ_ERRORS, 404: NOT_FOUND, 409: CONFLICT, **extra},
            ),
        )(viewset)

    return decorate
