"""Cookies set in an answer over HTTPS are marked ``Secure``.

The platform serves the same site over HTTP (:5000) and HTTPS (:5443). Django's
``SESSION_COOKIE_SECURE`` and ``CSRF_COOKIE_SECURE`` hold for every request, so turning them
on would end sign-ins over plain http; leaving them off would let a session cookie set over
HTTPS travel in the clear to the same host's :5000 later. Here a cookie set over HTTPS gets
``Secure`` (the browser then sends it over HTTPS only), one set over HTTP stays as it was.
``request.is_secure()`` is true for daphne's TLS endpoint and, through
``sttproject/proxies.py``, for a trusted proxy that terminated TLS.
"""

from __future__ import annotations


class SecureCookiesMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.is_secure():
            for morsel in response.cookies.values():
                morsel["secure"] = True
        return response
