"""Accounts through django-allauth: sign up, log in, log out, password reset."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from apps.accounts.models import User
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_sign_up_then_welcome_page(client):
    response = client.post(reverse("account_signup"), {
        "email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD,
    })
    assert response.status_code == 302
    assert User.objects.filter(email="ada@example.com").exists()
    page = client.get("/").content.decode()
    assert "You are not in a team yet" in page


def test_sign_up_errors_inline(client):
    response = client.post(reverse("account_signup"), {
        "email": "not-an-email", "password1": "123", "password2": "456",
    })
    assert response.status_code == 200
    body = response.content.decode()
    assert "Enter a valid email address." in body
    assert not User.objects.exists()


def test_login_logout(client):
    user = UserFactory()
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code in (200, 302)
    assert "_auth_user_id" in client.session
    client.post(reverse("account_logout"))
    assert "_auth_user_id" not in client.session


def test_wrong_password_is_refused(client):
    user = UserFactory()
    response = client.post(reverse("account_login"), {"login": user.email, "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_password_reset_by_email(client):
    user = UserFactory()
    client.post(reverse("account_reset_password"), {"email": user.email})
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+)", mail.outbox[0].body)
    assert link
    response = client.get(link.group(1), follow=True)
    form_url = response.redirect_chain[-1][0] if response.redirect_chain else link.group(1)
    new = "an entirely new passphrase 42"
    response = client.post(form_url, {"password1": new, "password2": new})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
