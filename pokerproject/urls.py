from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import views as account_views
from pokerproject import health
from pokerproject.jsi18n import CachedJavaScriptCatalog

urlpatterns = [
    path("", account_views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="prometheus-django-metrics"),
    path("admin/", admin.site.urls),
    # The translations of static/'s scripts (gettext, ngettext, interpolate), on every page.
    path("jsi18n/", CachedJavaScriptCatalog.as_view(), name="javascript-catalog"),
    # Django's set_language: the footer's selector posts here; it sets the language cookie.
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include(("api.urls", "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its script from a URL of its own instead of inline (the CSP).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="api/swagger_ui.html"
        ),
        name="api-docs",
    ),
    path("", include("integrations.urls")),
    path("", include("notifications.urls")),
    path("accounts/signup/", account_views.signup, name="signup"),
    path("accounts/login/", account_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("accounts.urls")),
    path("", include("stories.urls")),
    path("", include("rooms.urls")),
]
