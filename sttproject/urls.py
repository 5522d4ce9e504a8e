from __future__ import annotations

from django.contrib import admin
from django.urls import path

from transcription import views

urlpatterns = [
    path("", views.home, name="home"),
    path("status/", views.status_page, name="status"),
    path("api/config", views.api_config, name="api-config"),
    path("api/health", views.api_health, name="api-health"),
    path("admin/", admin.site.urls),
]

admin.site.site_header = "Speech platform administration"
admin.site.site_title = "Speech platform"
