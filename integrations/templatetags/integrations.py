"""``{% integrations_panel membership %}``: the integrations section of a team's page."""

from django import template

from accounts import roles
from integrations import selectors
from integrations.forms import ApiKeyForm, WebhookEndpointForm

register = template.Library()


@register.inclusion_tag("integrations/_team_section.html", takes_context=True)
def integrations_panel(context, membership):
    team = membership.team
    allowed = roles.can(membership.role, roles.Action.MANAGE_MEMBERS)
    return {
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
        "team": team,
        "allowed": allowed,
        "keys": selectors.api_key_list(team=team) if allowed else [],
        "endpoints": selectors.webhook_endpoint_list(team=team) if allowed else [],
        "jira": selectors.jira_connection_get(team=team) if allowed else None,
        "key_form": ApiKeyForm(),
        "webhook_form": WebhookEndpointForm(),
    }
