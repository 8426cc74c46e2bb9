"""The team usage page and its CSV export (the figures come from apps.teams.usage)."""

from __future__ import annotations

from django import forms
from django.http import HttpResponse
from django.shortcuts import render

from apps.teams.access import team_view
from apps.teams.usage import BREAKDOWNS, LONGEST_PERIOD_DAYS, Period, team_usage, usage_csv
from apps.teams.usage_chart import bar_chart

LAST_DAYS = (7, 30, 90)
DEFAULT_DAYS = 30


class PeriodForm(forms.Form):
    days = forms.TypedChoiceField(choices=[(n, f"Last {n} days") for n in LAST_DAYS],
                                  coerce=int, required=False)
    start = forms.DateField(label="From", required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", required=False,
                          widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if self.errors:
            return data
        if start or end:
            if not (start and end):
                raise forms.ValidationError("Give both dates, from and to.")
            if start > end:
                raise forms.ValidationError("The first date is after the second.")
            if (end - start).days >= LONGEST_PERIOD_DAYS:
                raise forms.ValidationError(
                    f"Choose at most {LONGEST_PERIOD_DAYS} days; export several periods "
                    "for longer.")
            data["period"] = Period(start, end)
        else:
            data["period"] = Period.last(data.get("days") or DEFAULT_DAYS)
        return data


@team_view()
def usage(request):
    form = PeriodForm(request.GET)
    everyone = request.membership.can_admin
    if not form.is_valid():
        return render(request, "teams/usage.html",
                      {"form": form, "everyone": everyone, "last_days": LAST_DAYS},
                      status=400)
    period = form.cleaned_data["period"]
    figures = team_usage(request.team, period, None if everyone else request.user)
    if request.GET.get("format") == "csv":
        response = HttpResponse(usage_csv(figures), content_type="text/csv; charset=utf-8")
        name = f"usage-{request.team.slug}-{period.start}-{period.end}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    query = request.GET.copy()
    query["format"] = "csv"
    breakdowns = [(key, title, column, figures.breakdowns[key])
                  for key, (title, column) in BREAKDOWNS.items()]
    return render(request, "teams/usage.html", {
        "form": form, "everyone": everyone, "last_days": LAST_DAYS, "usage": figures,
        "chart": bar_chart(figures.by_day), "breakdowns": breakdowns,
        "days_chosen": None if form.cleaned_data.get("start")
        else form.cleaned_data.get("days") or DEFAULT_DAYS,
        "csv_query": query.urlencode(),
    })
