from django import forms
from django.utils.translation import gettext_lazy as _


class StoryForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    external_key = forms.CharField(
        max_length=64, required=False, label=_("Key"), help_text=_("Optional, such as PROJ-123.")
    )
    url = forms.URLField(max_length=500, required=False, label=_("Link"), assume_scheme="https")
    description = forms.CharField(
        label=_("Description"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )


class ImportForm(forms.Form):
    """Step one of an import: a CSV file, or pasted text (CSV or a list, one title a line)."""

    file = forms.FileField(required=False, label=_("CSV file"))
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        required=False,
        strip=False,
        label=_("Or paste"),
    )
    kind = forms.ChoiceField(
        choices=[("list", _("A list: one title a line")), ("csv", _("CSV with a header row"))],
        initial="list",
        widget=forms.RadioSelect,
        label=_("Pasted text is"),
    )
