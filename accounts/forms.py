from django import forms
from django.contrib.auth.forms import UserCreationForm

from accounts.models import ROLE_CHOICES, User
from pokerproject.regions import registry


class SignupForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("username", "email")


class TeamForm(forms.Form):
    name = forms.CharField(max_length=80)
    region = forms.ChoiceField(help_text="Where the team's stories and rounds are stored.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = [(r, r) for r in registry.regions()]
        self.fields["region"].initial = registry.home_region()


class RoleForm(forms.Form):
    user_id = forms.IntegerField()
    role = forms.ChoiceField(choices=ROLE_CHOICES)


class InviteForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="voter")
