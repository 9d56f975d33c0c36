from django.contrib.auth import views as auth_views
from django.urls import path

from notifications import views
from notifications.forms import QueuedPasswordResetForm

urlpatterns = [
    path("teams/<slug:slug>/invites/email/", views.invite_email, name="invite_email"),
    path("teams/<slug:slug>/notifications/slack/", views.slack_webhook, name="slack_webhook"),
    path("account/notifications/", views.preferences, name="notification_preferences"),
    path(
        "notifications/unsubscribe/<str:token>/",
        views.unsubscribe,
        name="notifications_unsubscribe",
    ),
    # Django's own password reset views; the e-mail is queued by the form (a Celery task).
    path(
        "accounts/password/reset/",
        auth_views.PasswordResetView.as_view(form_class=QueuedPasswordResetForm),
        name="password_reset",
    ),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
