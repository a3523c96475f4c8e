"""Registration input and output, and the refresh of a JWT pair (rotation with the blacklist)."""

from __future__ import annotations

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.validators import UniqueValidator
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from security.roles import DEFAULT_ROLE, ROLES

User = get_user_model()


class RegisterSerializer(serializers.Serializer):
    """A new user: weak passwords are refused by Django's password validators."""

    username = serializers.CharField(
        max_length=150,
        validators=[UniqueValidator(queryset=User.objects.all(), message="A user with this username already exists.")],
    )
    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=ROLES, default=DEFAULT_ROLE)

    def validate_username(self, value: str) -> str:
        try:
            User.username_validator(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("A user with this username (in any letter case) already exists.")
        return value

    def validate(self, attrs):
        candidate = User(username=attrs["username"], email=attrs.get("email", ""))
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": exc.messages}) from exc
        return attrs


class RegisteredUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True, help_text='"" when none was given.')
    role = serializers.CharField()


@extend_schema_serializer(component_name="TokenRefresh")
class RotatingRefreshSerializer(TokenRefreshSerializer):
    """`{refresh}` in, `{access, refresh}` out: the refresh token sent is used up (blacklisted); keep the new one."""

    def validate(self, attrs):
        # The token's outstanding-token row is locked before the blacklist is read, so two requests racing with
        # one refresh token get one new pair between them and the other is refused like any reuse.
        # Decoding verifies the signature and the blacklist first: a forged or revoked token locks nothing.
        jti = self.token_class(attrs["refresh"])[jwt_settings.JTI_CLAIM]
        with transaction.atomic():
            # Held until the request's transaction ends, after the blacklisting below is committed.
            list(OutstandingToken.objects.select_for_update().filter(jti=jti).values_list("pk", flat=True))
            try:
                # Decodes again, so the blacklist is read anew now that this request holds the lock.
                return super().validate(attrs)
            except User.DoesNotExist as exc:
                raise AuthenticationFailed("The user of this token no longer exists.", code="user_not_found") from exc


class LoginSerializer(TokenObtainPairSerializer):
    """simplejwt's username/password serializer, with the username bounded as the user model bounds it.

    A username no account can have is refused with a 400 before any login attempt is recorded (the lockout's
    records hold at most 255 characters: a longer one used to end in a 500 on PostgreSQL).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        max_length = get_user_model()._meta.get_field(self.username_field).max_length
        self.fields[self.username_field] = serializers.CharField(write_only=True, max_length=max_length)
