"""Security events on the `clinrec.security` logger: logins (success, failure), lockouts and token refreshes.

One line per event, with the username and the client address, never a password or a token. The receivers
listen to Django's and axes' signals, so the token endpoint, the browsable API's login and the admin are all
covered by the same lines.
"""

from __future__ import annotations

import logging

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from clinrec.history import client_address

logger = logging.getLogger("clinrec.security")


def _where(request) -> str:
    if request is None:
        return "unknown"
    return f"{client_address(request)} {request.path}"


@receiver(user_logged_in, dispatch_uid="clinrec.security.login")
def log_login(sender, request=None, user=None, **kwargs) -> None:
    logger.info("login succeeded user=%s from=%s", user.get_username() if user else None, _where(request))


@receiver(user_login_failed, dispatch_uid="clinrec.security.failure")
def log_failure(sender, credentials=None, request=None, **kwargs) -> None:
    logger.warning("login failed user=%s from=%s", (credentials or {}).get("username"), _where(request))


@receiver(user_locked_out, dispatch_uid="clinrec.security.lockout")
def log_lockout(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    logger.warning("login locked out user=%s from=%s", username, ip_address)


def log_token_refresh(request, user_id) -> None:
    logger.info("token refreshed user_id=%s from=%s", user_id, _where(request))
