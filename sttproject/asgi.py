from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sttproject.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from sttproject.origins import SiteOriginValidator  # noqa: E402
from sttproject.proxies import TrustedProxyMiddleware  # noqa: E402
from sttproject.routing import websocket_urlpatterns  # noqa: E402
from sttproject.wsauth import WebSocketCredentials  # noqa: E402

websocket_router = URLRouter(websocket_urlpatterns)

# Outermost: every layer below sees the client and scheme that TRUSTED_PROXIES forwarded.
application = TrustedProxyMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            # An API token or a one-time ticket, from any origin (sttproject/wsauth.py says
            # why); else the cookie, which only the site's own pages may use (origins.py).
            "websocket": WebSocketCredentials(
                websocket_router, cookies=SiteOriginValidator(AuthMiddlewareStack(websocket_router))
            ),
        }
    )
)

# One process per container (compose): the web serves its container's metrics itself, with
# the platform-wide gauges (workers/metrics_exporter.py); otherwise the launcher's exporter does.
from django.conf import settings  # noqa: E402

if settings.METRICS_EXPORTER == "thread" and settings.METRICS_PORT:
    from workers.metrics_exporter import serve_in_thread

    serve_in_thread(settings.METRICS_HOST, settings.METRICS_PORT, platform=True)
