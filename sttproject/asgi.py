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

# Outermost: every layer below sees the client and scheme that TRUSTED_PROXIES forwarded.
application = TrustedProxyMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            # Only the site's own pages may open the socket with a user's cookie
            # (sttproject/origins.py); programs without an Origin authenticate by token.
            "websocket": SiteOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)
