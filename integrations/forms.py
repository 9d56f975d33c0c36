from django import forms

from integrations.models import Scope
from integrations.services import EVENT_TYPES


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What uses it, e.g. “Jira bot”.")
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        initial=[Scope.READ],
        widget=forms.CheckboxSelectMultiple,
        help_text="read: stories, rounds, estimates, table; write: change the backlog and start "
        "rounds; webhooks: manage webhook subscriptions.",
    )


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(max_length=500, label="URL", assume_scheme="https")
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        choices=[(e, e) for e in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None checked: every event.",
    )


class JiraConnectionForm(forms.Form):
    site_url = forms.URLField(
        max_length=300,
        label="Site URL",
        assume_scheme="https",
        help_text="https://your-site.atlassian.net",
    )
    email = forms.EmailField(label="Account e-mail")
    api_token = forms.CharField(
        label="API token",
        widget=forms.PasswordInput,
        help_text="From id.atlassian.com → Security → API tokens. Stored encrypted.",
    )
    write_back = forms.BooleanField(
        required=False, initial=True, label="Write accepted estimates to Jira"
    )


class JiraImportForm(forms.Form):
    jql = forms.CharField(
        max_length=1000,
        label="JQL",
        initial="project = PROJ AND statusCategory != Done ORDER BY rank",
    )
