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
