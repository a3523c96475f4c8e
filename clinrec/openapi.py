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


# --- Links: how a client (and schemathesis' stateful phase) chains create → read → update → delete ------------

HTTP_METHODS = ("get", "put", "patch", "delete", "post")


def _item_paths(paths: dict) -> dict[str, tuple[str, str]]:
    """For each collection path (`/x/`), its item path (`/x/{id}/`) and the name of the item's path parameter."""
    items = {}
    for path in paths:
        head, _, tail = path.rstrip("/").rpartition("/")
        if tail.startswith("{") and tail.endswith("}") and f"{head}/" in paths:
            items[f"{head}/"] = (path, tail[1:-1])
    return items


def add_resource_links(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: OpenAPI links from every create, and every read, to its item.

    Derived from the paths, so a resource added later is linked without a list to maintain: the 201 of
    `POST /x/` links to every operation on `/x/{id}/` and below it (read, replace, update, delete, actions
    such as evaluate) with the id taken from the response body; the 200 of a read or an update links to the
    same operations. Each link is named after the operation it leads to.
    """
    paths = result.get("paths", {})
    for collection, (item, parameter) in _item_paths(paths).items():
        targets = {
            operation["operationId"]: {
                "operationId": operation["operationId"],
                "parameters": {parameter: f"$response.body#/{parameter}"},
            }
            for path, methods in paths.items()
            if path.startswith(item)
            for method, operation in methods.items()
            if method in HTTP_METHODS
        }
        sources = [
            (paths[collection].get("post"), "201"),
            (paths[item].get("get"), "200"),
            (paths[item].get("put"), "200"),
            (paths[item].get("patch"), "200"),
        ]
        for operation, status_code in sources:
            response = (operation or {}).get("responses", {}).get(status_code)
            if response is not None and targets:
                response.setdefault("links", {}).update(targets)
    return result


# --- Refusals every operation can meet, before any view runs ------------------------------------------------

ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def document_refused_requests(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: the refusals of the HTTP layer, on every operation.

    - 414: a request line longer than the HTTP server takes (gunicorn's `limit_request_line`), answered by it;
    - 400 on paginated lists: a `limit` or `offset` out of range;
    - 413 (a body over DATA_UPLOAD_MAX_MEMORY_SIZE) and 415 (a body that is not JSON or a form), as
      `{"detail": ...}`, on operations that take a body.
    Documented once here rather than on each view, since no view sees these requests.
    """
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("414", {"description": "The URL is longer than the server accepts."})
            if any(parameter.get("name") == "limit" for parameter in operation.get("parameters", [])):
                # The paginator refuses a limit or offset that is not a whole number in range.
                responses.setdefault(
                    "400",
                    {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ValidationError"}}},
                        "description": "Invalid paging or filter parameters; the body names each one.",
                    },
                )
            if "requestBody" in operation:
                responses.setdefault(
                    "413", {"content": ERROR_BODY, "description": "The body is larger than the server accepts."}
                )
                responses.setdefault(
                    "415", {"content": ERROR_BODY, "description": "The body is not JSON or form data."}
                )
    return result
