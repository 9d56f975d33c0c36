"""``{{ role|role_label }}``: a role's name in the active language, for lists of raw role values."""

from django import template

from accounts.models import ROLE_LABELS
from accounts.roles import Role

register = template.Library()


@register.filter
def role_label(role: str) -> str:
    try:
        return str(ROLE_LABELS[Role(role)])
    except ValueError:
        return role
