from django import forms


class StoryForm(forms.Form):
    title = forms.CharField(max_length=200)
    external_key = forms.CharField(
        max_length=64, required=False, label="Key", help_text="Optional, such as PROJ-123."
    )
    url = forms.URLField(max_length=500, required=False, label="Link", assume_scheme="https")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
