"""The history of user accounts (django-simple-history); the clinical models declare `history` themselves.

The password hash and the last-login time are not kept: the hash must not be copied anywhere, and a login is
recorded as a security event (clinrec.security), not as a change of the account.
"""

from django.contrib.auth import get_user_model
from simple_history import register

from clinrec.history import AuditedHistory, history_user

register(
    get_user_model(),
    app="audit",
    bases=[AuditedHistory],
    get_user=history_user,
    excluded_fields=["password", "last_login"],
)
