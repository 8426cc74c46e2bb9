import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application does

from apps.core.bodylimit import BodyLimit  # noqa: E402  (needs the settings configured)
from apps.core.handler import SyncChainASGIHandler  # noqa: E402

# Every request body is limited before Django spools it (413 past the limit).
application = BodyLimit(SyncChainASGIHandler())
