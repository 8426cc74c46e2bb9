"""The Compress form: text or one of the team's ready documents, a ratio or a budget."""

from __future__ import annotations

from django import forms

from apps.documents.models import DocStatus
from workers.scope import (
    MAX_RATIO,
    MAX_TARGET_TOKENS,
    METHODS,
    MIN_TARGET_TOKENS,
    CompressionError,
    check_target,
)

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
    # The bounds are the engine's (check_target in clean); the attributes only guide the browser.
    ratio = forms.FloatField(required=False, initial=3,
                             widget=forms.NumberInput(attrs={"min": 1, "max": MAX_RATIO}),
                             help_text=f"2 = half as long; at most {MAX_RATIO:g}.")
    target_tokens = forms.IntegerField(
        required=False, label="Token budget", widget=forms.NumberInput(
            attrs={"min": MIN_TARGET_TOKENS, "max": MAX_TARGET_TOKENS}))
    question = forms.CharField(required=False, max_length=2000,
                               help_text="Optional: the parts that answer it keep more.")
    method = forms.ChoiceField(choices=METHOD_CHOICES, initial="scope")

    def __init__(self, *args, team, documents=None, **kwargs) -> None:
        """``documents``: those the person may read (apps.collections.access); the team's."""
        super().__init__(*args, **kwargs)
        self.team = team
        documents = team.documents.all() if documents is None else documents
        self.documents = documents.filter(status=DocStatus.READY).order_by("title")
        self.fields["document"].widget.choices = [("", "— or pick a document —")] + [
            (d.pk, d.title) for d in self.documents
        ]

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
        field, unused = (("target_tokens", "ratio") if data.get("target") == "tokens"
                         else ("ratio", "target_tokens"))
        data[unused] = None
        if field in self.errors:
            return data
        if data.get(field) is None:
            self.add_error(field, "Give a token budget." if field == "target_tokens"
                           else "Give a ratio, such as 3.")
            return data
        try:
            check_target(data.get("ratio"), data.get("target_tokens"))
        except CompressionError as err:
            message = str(err)
            self.add_error(field, f"{message[0].upper()}{message[1:]}.")
        return data
