import logging

from django import forms
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.utils.translation import gettext_lazy as _

from accounts.models import ROLE_CHOICES
from notifications import services
from pokerproject import ratelimit

logger = logging.getLogger(__name__)


class InviteEmailForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"))
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES, initial="voter")


class PreferenceForm(forms.Form):
    session_summaries = forms.BooleanField(
        required=False, label=_("E-mail me a summary when a session of my teams ends")
    )


class SlackWebhookForm(forms.Form):
    url = forms.URLField(
        max_length=500,
        label=_("Slack incoming webhook URL"),
        assume_scheme="https",
        help_text=_("Slack (or a compatible chat) gets each session's summary."),
    )


class QueuedPasswordResetForm(PasswordResetForm):
    """Django's form, whose e-mail is sent by a Celery task instead of in the request (the
    answer is the same whether or not the address is known, as with Django's own)."""

    def save(  # type: ignore[override]
        self, *, request=None, use_https: bool = False, domain_override=None, **kwargs
    ) -> None:
        host = domain_override or (request.get_host() if request else "")
        base_url = f"{'https' if use_https else 'http'}://{host}" if host else ""
        for user in self.get_users(self.cleaned_data["email"]):
            # Anyone can ask for anyone's reset: a cap per account keeps the form from being
            # used to flood an inbox. Past it nothing is sent and the answer does not change.
            if not ratelimit.allow(
                f"password-reset:{user.email.lower()}",
                limit=settings.PASSWORD_RESET_LIMIT,
                window_seconds=settings.PASSWORD_RESET_WINDOW_SECONDS,
            ):
                logger.warning(
                    "password reset e-mail not sent: limit reached", extra={"user_id": user.pk}
                )
                continue
            services.password_reset_request(user=user, base_url=base_url)
