from django.urls import path

from integrations import views

BASE = "teams/<slug:slug>/integrations/"

urlpatterns = [
    path(f"{BASE}keys/", views.api_key_create, name="api_key_create"),
    path(f"{BASE}keys/<int:pk>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path(f"{BASE}webhooks/", views.webhook_create, name="webhook_create"),
    path(f"{BASE}webhooks/<int:pk>/", views.webhook_detail, name="webhook_detail"),
    path(f"{BASE}webhooks/<int:pk>/rotate/", views.webhook_rotate, name="webhook_rotate"),
    path(f"{BASE}webhooks/<int:pk>/toggle/", views.webhook_toggle, name="webhook_toggle"),
    path(f"{BASE}webhooks/<int:pk>/delete/", views.webhook_delete, name="webhook_delete"),
    path(f"{BASE}jira/", views.jira_settings, name="jira_settings"),
    path(f"{BASE}jira/import/", views.jira_import, name="jira_import"),
    path(f"{BASE}jira/disconnect/", views.jira_disconnect, name="jira_disconnect"),
]
