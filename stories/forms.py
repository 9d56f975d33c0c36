from django import forms


class StoryForm(forms.Form):
    title = forms.CharField(max_length=200)
    external_key = forms.CharField(
        max_length=64, required=False, label="Key", help_text="Optional, such as PROJ-123."
    )
    url = forms.URLField(max_length=500, required=False, label="Link", assume_scheme="https")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class ImportForm(forms.Form):
    """Step one of an import: a CSV file, or pasted text (CSV or a list, one title a line)."""

    file = forms.FileField(required=False, label="CSV file")
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        required=False,
        strip=False,
        label="Or paste",
    )
    kind = forms.ChoiceField(
        choices=[("list", "A list: one title a line"), ("csv", "CSV with a header row")],
        initial="list",
        widget=forms.RadioSelect,
        label="Pasted text is",
    )
