from django import forms
from django.utils.translation import gettext_lazy as _

from integrations.models import Scope
from integrations.services import EVENT_TYPES


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=80, help_text=_("What uses it, e.g. “Jira bot”.")
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=Scope.choices,
        initial=[Scope.READ],
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "read: stories, rounds, estimates, table; write: change the backlog and start "
            "rounds; webhooks: manage webhook subscriptions."
        ),
    )


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(max_length=500, label=_("URL"), assume_scheme="https")
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=[(e, e) for e in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None checked: every event."),
    )


class JiraConnectionForm(forms.Form):
    site_url = forms.URLField(
        max_length=300,
        label=_("Site URL"),
        assume_scheme="https",
        help_text=_("https://your-site.atlassian.net"),
    )
    email = forms.EmailField(label=_("Account e-mail"))
    api_token = forms.CharField(
        label=_("API token"),
        widget=forms.PasswordInput,
        help_text=_("From id.atlassian.com → Security → API tokens. Stored encrypted."),
    )
    write_back = forms.BooleanField(
        required=False, initial=True, label=_("Write accepted estimates to Jira")
    )


class JiraImportForm(forms.Form):
    jql = forms.CharField(
        max_length=1000,
        label="JQL",
        initial="project = PROJ AND statusCategory != Done ORDER BY rank",
    )
