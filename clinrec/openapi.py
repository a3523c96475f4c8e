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

# Optimistic concurrency (clinrec/concurrency.py): the ETag of one resource, If-Match on writes, If-None-Match.
NOT_MODIFIED = OpenApiResponse(description="Not modified: the representation still has the ETag in If-None-Match.")
PRECONDITION_ERRORS = {
    412: OpenApiResponse(
        ErrorSerializer,
        description="Precondition failed: the resource changed since the read whose ETag is in If-Match. "
        "Nothing was written; read it again and retry with the new ETag.",
    ),
    428: OpenApiResponse(
        ErrorSerializer, description="Precondition required: this server requires If-Match (REQUIRE_IF_MATCH)."
    ),
}
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description="The ETag of the version you read (from a GET or your last write), or `*` for any version. The "
    "write happens only while the resource is still at that version; otherwise 412 and nothing changes. "
    "Optional unless the server sets REQUIRE_IF_MATCH (then 428 without it).",
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    str,
    OpenApiParameter.HEADER,
    description="The ETag of the representation you hold: 304 without a body while it is still current.",
)


def etag_header(status_code: int) -> OpenApiParameter:
    """The `ETag` response header: the version of the representation in the body, for a later If-Match."""
    return OpenApiParameter(
        "ETag",
        str,
        OpenApiParameter.HEADER,
        response=[status_code],
        description="Strong validator of this representation (with the same `?expand=`); send it back in "
        "If-Match to write only if nobody changed the resource meanwhile.",
    )


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
                parameters=[*parameters, IF_NONE_MATCH, etag_header(200)],
                responses={
                    200: serializer,
                    304: NOT_MODIFIED,
                    **READ_ERRORS,
                    400: BAD_REQUEST,
                    404: NOT_FOUND,
                    **extra,
                },
            ),
            create=extend_schema(
                summary=f"Create a {noun}",
                parameters=[etag_header(201)],
                responses={201: serializer, **READ_ERRORS, 400: BAD_REQUEST, 409: CONFLICT},
            ),
            update=extend_schema(
                summary=f"Replace a {noun}",
                parameters=[IF_MATCH, etag_header(200)],
                responses={
                    200: serializer,
                    **READ_ERRORS,
                    400: BAD_REQUEST,
                    404: NOT_FOUND,
                    409: CONFLICT,
                    **PRECONDITION_ERRORS,
                    **extra,
                },
            ),
            partial_update=extend_schema(
                summary=f"Update part of a {noun}",
                parameters=[IF_MATCH, etag_header(200)],
                responses={
                    200: serializer,
                    **READ_ERRORS,
                    400: BAD_REQUEST,
                    404: NOT_FOUND,
                    409: CONFLICT,
                    **PRECONDITION_ERRORS,
                    **extra,
                },
            ),
            destroy=extend_schema(
                summary=f"Delete a {noun}",
                description="Refused with 409 while other records still point at it; nothing is deleted then.",
                parameters=[IF_MATCH],
                responses={204: None, **READ_ERRORS, 404: NOT_FOUND, 409: CONFLICT, **PRECONDITION_ERRORS, **extra},
            ),
        )(viewset)

    return decorate
