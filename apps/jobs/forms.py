from __future__ import annotations

from django import forms

MAX_TEXT_CHARS = 2_000_000


class WordStatsForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "Paste any text…"}),
        max_length=MAX_TEXT_CHARS,
        strip=True,
        error_messages={
            "required": "Paste some text to count.",
            "max_length": "That text is too long for this demo (2 million characters at most).",
        },
    )

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        if not any(ch.isalpha() for ch in text):
            raise forms.ValidationError("The text has no words to count.")
        return text
