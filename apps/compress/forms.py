"""The Compress form: text or one of the team's ready documents, a ratio or a budget."""

from __future__ import annotations

from django import forms

from apps.documents.models import DocStatus
from workers.scope import MAX_RATIO, METHODS

MAX_TEXT_CHARS = 2_000_000  # ~500k tokens: more belongs in the library as a document
METHOD_CHOICES = [("scope", "SCOPE: rewrite (generative)"),
                  ("deletion", "Deletion baseline (LLMLingua-style)")]
assert {m for m, _ in METHOD_CHOICES} == set(METHODS)


class CompressForm(forms.Form):
    text = forms.CharField(
        required=False, strip=False, max_length=MAX_TEXT_CHARS,
        widget=forms.Textarea(attrs={"rows": 10, "placeholder": "Paste the text to compress…"}),
    )
    document = forms.IntegerField(required=False, widget=forms.Select)
    target = forms.ChoiceField(choices=[("ratio", "A ratio"), ("tokens", "A token budget")],
                               initial="ratio", widget=forms.RadioSelect)
    ratio = forms.FloatField(required=False, initial=3, min_value=1.0001, max_value=MAX_RATIO,
                             help_text=f"2 = half as long; at most {MAX_RATIO:g}.")
    target_tokens = forms.IntegerField(required=False, min_value=4, label="Token budget")
    question = forms.CharField(required=False, max_length=2000,
                               help_text="Optional: the parts that answer it keep more.")
    method = forms.ChoiceField(choices=METHOD_CHOICES, initial="scope")

    def __init__(self, *args, team, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.team = team
        self.documents = team.documents.filter(status=DocStatus.READY).order_by("title")
        self.fields["document"].widget.choices = [("", "— or pick a document —")] + [
            (d.pk, d.title) for d in self.documents
        ]
        self.fields["ratio"].error_messages["min_value"] = (
            "The ratio must be greater than 1 (2 means half as long)."
        )
        self.fields["ratio"].error_messages["max_value"] = (
            f"A ratio above {MAX_RATIO:g} is absurd: nothing worth reading would be left."
        )

    def clean_document(self):
        pk = self.cleaned_data.get("document")
        if pk is None:
            return None
        document = self.documents.filter(pk=pk).first()  # only this team's ready documents
        if document is None:
            raise forms.ValidationError("Choose one of this team's ready documents.")
        return document

    def clean(self):
        data = super().clean()
        text, document = data.get("text") or "", data.get("document")
        if "document" in self.errors:
            return data
        if text.strip() and document:
            raise forms.ValidationError("Paste a text or pick a document, not both.")
        if not text.strip() and not document:
            if text:
                self.add_error("text", "The text is empty: there is nothing to compress.")
            else:
                raise forms.ValidationError("Paste a text or pick a document to compress.")
        if "\x00" in text:
            self.add_error("text", "This looks like binary content, not text.")
        if data.get("target") == "tokens":
            if data.get("target_tokens") is None and "target_tokens" not in self.errors:
                self.add_error("target_tokens", "Give a token budget.")
            data["ratio"] = None
        else:
            if data.get("ratio") is None and "ratio" not in self.errors:
                self.add_error("ratio", "Give a ratio, such as 3.")
            data["target_tokens"] = None
        return data
