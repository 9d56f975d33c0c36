from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from accounts.models import GUEST_ROLE_CHOICES, ROLE_CHOICES, User
from pokerproject.regions import registry


class SignupForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("username", "email")


class TeamForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80)
    region = forms.ChoiceField(
        label=_("Region"), help_text=_("Where the team's stories and rounds are stored.")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = [(r, r) for r in registry.regions()]
        self.fields["region"].initial = registry.home_region()


class RoleForm(forms.Form):
    user_id = forms.IntegerField()
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES)


class InviteForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES, initial="voter")


class GuestJoinForm(forms.Form):
    # The service cleans and checks the name (accounts.services.guest_name_clean); the form's
    # limit only keeps a huge body from reaching it.
    name = forms.CharField(label=_("Your name"), max_length=200, strip=True)


class GuestSettingsForm(forms.Form):
    allow_guests = forms.BooleanField(label=_("Allow guests"), required=False)
    guest_role = forms.ChoiceField(label=_("Guests join as"), choices=GUEST_ROLE_CHOICES)


class GuestClaimForm(UserCreationForm):
    """A guest picks a username and a password (and, if they like, an e-mail address); the
    view hands them to accounts.services.guest_claim for the guest's own user row."""

    class Meta:
        model = User
        fields = ("username", "email")
