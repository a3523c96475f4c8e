"""Admin: user accounts show their history (who changed an account, and what), like every clinical record.

Historical records have no admin page of their own: they are read through each record's *History* button and
cannot be edited or deleted there.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from simple_history.admin import SimpleHistoryAdmin

User = get_user_model()


# Extends the user admin already registered (security's, with its role column and filter), so the two compose.
RegisteredUserAdmin = type(admin.site.get_model_admin(User))


class AuditedUserAdmin(SimpleHistoryAdmin, RegisteredUserAdmin):
    """The user admin as registered, with the *History* button of django-simple-history."""


admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
