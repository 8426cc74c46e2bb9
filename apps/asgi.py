import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application does

from django.urls import get_resolver  # noqa: E402

from apps.core.bodylimit import BodyLimit  # noqa: E402  (needs the settings configured)
from apps.core.handler import SyncChainASGIHandler  # noqa: E402

# Every request body is limited before Django spools it (413 past the limit).
application = BodyLimit(SyncChainASGIHandler())

# What a web process loads before its first request (the modules, the URLconf and the views
# it imports, the models) lives as long as the process. Frozen, it is no longer walked by
# the collector's full passes, which every few hundred API requests paused the process for
# 60-130 ms here: each request leaves reference cycles (DRF's request and view point at each
# other) that the collector frees in its oldest generation. Measured in docs/deployment.md.
get_resolver().urlconf_module  # noqa: B018  (imported now, not on the first request)
gc.collect()
gc.freeze()
