"""``/tls/ca.crt``: the certificate authority this installation made for its HTTPS
(``sttproject/tls.py``), for a colleague to install once on a laptop or phone so that the
platform's https address is trusted without a warning. Only the public certificate: its key
never leaves ``DATA_DIR/tls``. Not found when the operator gave a certificate of their own
(``TLS_CERT_FILE``) or HTTPS is off."""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from sttproject.tls import CA_CERT


@login_not_required  # needed before a phone can sign in over https without a warning
@require_GET
def authority(request: HttpRequest) -> HttpResponse:
    if not settings.HTTPS_PORT or os.environ.get("TLS_CERT_FILE", "").strip():
        raise Http404("this platform's certificate is not one it made")
    try:
        pem = (settings.TLS_DIR / CA_CERT).read_bytes()
    except OSError:
        raise Http404("no certificate made here yet") from None
    # The type phones and browsers offer to install as an authority.
    response = HttpResponse(pem, content_type="application/x-x509-ca-cert")
    response["Content-Disposition"] = 'attachment; filename="speech-platform-ca.crt"'
    return response
