from django import template

from apps.core.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str):
    """Untrusted Markdown → sanitised HTML."""
    return render_markdown(text)
