import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")
django_application = get_asgi_application()

from apps.core.bodylimit import BodyLimit  # noqa: E402  (needs the settings configured)

# Every request body is limited before Django spools it (413 past the limit).
application = BodyLimit(django_application)
