"""``{% notifications_panel membership %}``: the notifications section of a team's page."""

from django import template

from accounts import roles
from notifications import selectors
from notifications.forms import InviteEmailForm, SlackWebhookForm

register = template.Library()


@register.inclusion_tag("notifications/_team_section.html", takes_context=True)
def notifications_panel(context, membership):
    team = membership.team
    allowed = roles.can(membership.role, roles.Action.MANAGE_MEMBERS)
    return {
        "csrf_token": context.get("csrf_token"),
        "team": team,
        "allowed": allowed,
        "slack": selectors.slack_webhook_get(team=team) if allowed else None,
        "invite_form": InviteEmailForm(),
        "slack_form": SlackWebhookForm(),
    }


@register.filter
def slack(text: object) -> str:
    """Escape text for Slack's mrkdwn, where &, < and > are control characters (links)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
