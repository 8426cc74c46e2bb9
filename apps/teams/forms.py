from __future__ import annotations

from django import forms

from apps.teams.models import Role


class TeamForm(forms.Form):
    name = forms.CharField(max_length=80, strip=True, label="Team name")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if not any(ch.isalnum() for ch in name):
            raise forms.ValidationError("Use at least one letter or digit.")
        return name


class InvitationForm(forms.Form):
    role = forms.ChoiceField(
        choices=[(r.value, r.label) for r in Role if r != Role.OWNER], initial=Role.MEMBER
    )
    email = forms.EmailField(required=False, label="E-mail (optional, for your records)")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
