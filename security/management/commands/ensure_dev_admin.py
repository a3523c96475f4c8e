"""`manage.py ensure_dev_admin`: the development administrator of `make run` (only with DEBUG, only if absent)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from security.roles import ADMIN


class Command(BaseCommand):
    help = (
        "Create the development admin user (DEV_ADMIN_USERNAME/DEV_ADMIN_PASSWORD) when DEBUG is on and it is absent."
    )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            self.stdout.write("DEBUG is off: no development admin is created.")
            return
        User = get_user_model()
        username = settings.DEV_ADMIN_USERNAME
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Development admin {username!r} already exists.")
            return
        user = User.objects.create_superuser(username=username, email="", password=settings.DEV_ADMIN_PASSWORD)
        user.groups.add(Group.objects.get(name=ADMIN))
        self.stderr.write(
            self.style.WARNING(
                f"WARNING: created the development admin {username!r} with password "
                f"{settings.DEV_ADMIN_PASSWORD!r}. For development only: never with DEBUG off."
            )
        )
