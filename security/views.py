"""`/api/v1/security/`: JWT token, refresh and logout, and registration of users by an administrator."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenBlacklistSerializer, TokenObtainPairSerializer
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.views import TokenBlacklistView, TokenObtainPairView, TokenRefreshView

from clinrec.openapi import BAD_REQUEST, READ_ERRORS, UNAUTHORIZED, ErrorSerializer
from security import events, services
from security.lockout import lockout_response
from security.permissions import requires_permission
from security.serializers import RegisteredUserSerializer, RegisterSerializer, RotatingRefreshSerializer


class NoStoreMixin:
    """Tokens are credentials: no browser or proxy may keep a copy (RFC 6749 §5.1)."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        return response


@extend_schema(
    summary="Get an access and a refresh token",
    description="Username and password as JSON or form fields (as an OAuth2 password grant sends them).",
    responses={
        200: OpenApiResponse(TokenObtainPairSerializer, description="`{access, refresh}`"),
        400: BAD_REQUEST,
        401: UNAUTHORIZED,
        429: OpenApiResponse(
            ErrorSerializer,
            description="Too many failed logins for this username from this address (or from this address): "
            "refused for AXES_COOLOFF_MINUTES, even with the right password; `Retry-After` says how long.",
        ),
    },
)
class TokenView(NoStoreMixin, TokenObtainPairView):
    """Exchange a username and password for JWTs; an OAuth2 `grant_type` other than `password` is refused.

    Failed attempts count towards the login lockout (django-axes: simplejwt passes the request to
    `authenticate`); a locked-out client gets 429, even with the right password. A success is a login like
    the admin's: `user_logged_in` resets the failure count and is logged as a security event.
    """

    def post(self, request, *args, **kwargs):
        grant_type = request.data.get("grant_type") if hasattr(request.data, "get") else None
        if grant_type not in (None, "", "password"):
            raise ValidationError({"grant_type": [f"Unsupported grant type {grant_type!r}; use 'password'."]})
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except AuthenticationFailed as failure:
            # Axes marks the request (DRF's, the one simplejwt authenticated with) when it is locked out.
            if getattr(request, "axes_locked_out", False):
                return lockout_response(request)
            # Answered here rather than raised: an error raised through DRF's handler rolls the request's
            # transaction back, and with it axes' record of this failure.
            return Response(
                {"detail": failure.detail},
                status=failure.status_code,
                headers={"WWW-Authenticate": self.get_authenticate_header(request)},
            )
        user_logged_in.send(sender=serializer.user.__class__, request=request, user=serializer.user)
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


@extend_schema(
    summary="Get a new access and refresh token",
    description=(
        "The refresh token sent is used up: keep the new one. Sending a used (or logged-out) refresh token "
        "again is refused with 401 `Token is blacklisted`."
    ),
    responses={
        200: OpenApiResponse(RotatingRefreshSerializer, description="`{access, refresh}`"),
        400: BAD_REQUEST,
        401: UNAUTHORIZED,
    },
)
class RefreshView(NoStoreMixin, TokenRefreshView):
    """Exchange a refresh token for a new pair; the refresh token sent is blacklisted (rotation)."""

    serializer_class = RotatingRefreshSerializer

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        events.log_token_refresh(request, AccessToken(response.data["access"]).get("user_id"))
        return response


@extend_schema(
    summary="Log out: revoke a refresh token",
    description=(
        "Blacklists the refresh token, so it can no longer be refreshed. No access token is needed (the refresh "
        "token is the credential); access tokens already issued expire within JWT_ACCESS_TOKEN_MINUTES."
    ),
    request=TokenBlacklistSerializer,
    responses={
        204: OpenApiResponse(description="Revoked."),
        400: BAD_REQUEST,
        401: OpenApiResponse(UNAUTHORIZED.response, description="Not a valid refresh token (or already revoked)."),
    },
)
class LogoutView(TokenBlacklistView):
    """Blacklist a refresh token (simplejwt's TokenBlacklistView), answering 204."""

    def post(self, request, *args, **kwargs):
        super().post(request, *args, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RegisterView(APIView):
    """Create a user with a role (viewer by default); administrators only."""

    permission_classes = [requires_permission("auth.add_user")]

    @extend_schema(
        summary="Register a user",
        request=RegisterSerializer,
        responses={
            201: RegisteredUserSerializer,
            400: BAD_REQUEST,
            **READ_ERRORS,
            # Usernames are unique in any case: a registration racing another of the same name loses with a 409.
            409: OpenApiResponse(ErrorSerializer, description="The username was taken meanwhile."),
        },
    )
    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.register_user(**serializer.validated_data)
        body = {
            "id": user.pk,
            "username": user.username,
            "email": user.email,
            "role": serializer.validated_data["role"],
        }
        return Response(RegisteredUserSerializer(body).data, status=status.HTTP_201_CREATED)
