"""Webhooks cannot reach the inside: hostile DNS answers, rebinding, redirects, slow drips
and endless answers all end in bounded time with a generic error.

Hostile name resolution is the one failure that cannot be caused here, so the resolver
(apps.api.webhooks.resolve) is replaced; every connection is real, to loopback servers."""

from __future__ import annotations

import base64
import ipaddress
import ssl
import subprocess
import threading
import time

import pytest

from apps.api import services, webhooks
from apps.api.models import Batch, BatchItem, ItemStatus
from apps.jobs import services as jobs
from apps.jobs.models import Job
from tests.api.conftest import url
from tests.api.webhook_server import WebhookServer

pytestmark = pytest.mark.django_db

NAME = "hooks.example.test"  # not in any DNS: only the patched resolver knows it

NOT_PUBLIC = [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0",  # noqa: S104 - an address to refuse
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "198.18.0.1", "192.0.2.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1", "ff0e::1",
    "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1",  # NAT64
    "::7f00:1",  # IPv4-compatible
    "2002:7f00:1::1", "2002:a00:1::1",  # 6to4 around loopback and 10/8
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
          "2002:808:808::1"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_inner_addresses_in_every_form_are_not_public(address):
    assert not webhooks.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_public(address):
    assert webhooks.is_public(ipaddress.ip_address(address))


class FakeDNS(dict):
    """What the resolver answers for each name; names it does not know do not exist."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def resolve(self, host, port):
        self.calls.append(host)
        if host not in self:
            raise OSError("Name or service not known")
        return [ipaddress.ip_address(a) for a in self[host]]


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDNS()
    monkeypatch.setattr(webhooks, "resolve", fake.resolve)
    return fake


@pytest.mark.parametrize("answer", [["127.0.0.1"], ["10.0.0.5"], ["169.254.169.254"],
                                    ["::ffff:127.0.0.1"], ["64:ff9b::a00:5"],
                                    ["8.8.8.8", "192.168.0.10"]])
def test_a_name_that_resolves_inside_is_refused_at_submission(key_client, team, document, dns,
                                                              answer):
    dns[NAME] = answer
    response = key_client.post(url(team, "batches/"), {
        "kind": "qa", "questions": ["Who?"], "document_ids": [document.pk],
        "webhook_url": f"https://{NAME}/hook"}, format="json")
    assert response.status_code == 400
    assert response.json()["webhook_url"] == [webhooks.NO_PUBLIC_ADDRESS]
    assert not Batch.objects.exists() and not Job.objects.exists()


def test_an_unknown_host_gets_the_same_answer_as_an_inner_one(key_client, team, document, dns):
    response = key_client.post(url(team, "batches/"), {
        "kind": "qa", "questions": ["Who?"], "document_ids": [document.pk],
        "webhook_url": "https://nowhere.example.test/hook"}, format="json")
    assert response.json()["webhook_url"] == [webhooks.NO_PUBLIC_ADDRESS]


def _finished_batch(key_client, team, document, webhook_url) -> Job:
    """A batch with a webhook whose one item has ended: its webhook job, ready to run.
    (The item's answer does not matter here: it is marked done without the model.)"""
    body = key_client.post(url(team, "batches/"), {
        "kind": "qa", "questions": ["Who?"], "document_ids": [document.pk],
        "webhook_url": webhook_url}, format="json").json()
    BatchItem.objects.filter(batch_id=body["id"]).update(status=ItemStatus.SUCCEEDED)
    return services.refresh_batch(body["id"]).webhook_job


def test_dns_rebinding_is_refused_at_delivery_and_nothing_is_sent(key_client, team, document,
                                                                  dns, settings):
    with WebhookServer() as hook:
        dns[NAME] = ["93.184.215.14"]  # public while the batch is checked ...
        job = _finished_batch(key_client, team, document, f"http://{NAME}:{hook.port}/hook")
        dns[NAME] = ["127.0.0.1"]  # ... the hook's own address when it is delivered
        assert jobs.run(job.pk, job.celery_task_id) == "failed"  # not retried: refused
    job.refresh_from_db()
    assert job.error == f"WebhookFailed: {webhooks.NO_PUBLIC_ADDRESS}"
    assert hook.received == []


def test_delivery_connects_to_the_checked_address_and_names_the_host(dns, settings):
    """The name resolves once; the request goes to that address with the name in Host (a
    second lookup would fail: the name exists only in the patched resolver's first answer)."""
    settings.API_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    with WebhookServer() as hook:
        dns[NAME] = ["127.0.0.1"]
        status = webhooks.post(f"http://ci:s%40cret@{NAME}:{hook.port}/hook?x=1", b"{}", {})
    assert status == 204
    assert dns.calls == [NAME]
    headers = hook.received[0]["headers"]
    assert headers["Host"] == f"{NAME}:{hook.port}"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"ci:s@cret").decode()


def test_a_refused_connection_is_recorded_without_detail(key_client, team, document, settings):
    settings.API_WEBHOOK_ALLOW_PRIVATE = True
    with WebhookServer() as closed:
        port = closed.port
    job = _finished_batch(key_client, team, document, f"http://127.0.0.1:{port}/hook")
    # Transient: the job is sent again after a backoff.
    assert jobs.run(job.pk, job.celery_task_id) == "retrying"
    job.refresh_from_db()
    assert job.message.endswith(f"WebhookFailed: {webhooks.NOT_DELIVERED}")
    assert str(port) not in job.message and "refused" not in job.message.lower()


def test_a_redirect_is_not_followed(settings):
    settings.API_WEBHOOK_ALLOW_PRIVATE = True  # both servers are on loopback
    with (WebhookServer() as inner, WebhookServer(redirect_to=inner.url) as hook,
          pytest.raises(webhooks.WebhookFailed, match="The webhook answered 307.")):
        webhooks.post(hook.url, b"{}", {})
    assert len(hook.received) == 1 and inner.received == []


def test_a_slow_drip_ends_at_the_total_deadline(settings):
    settings.API_WEBHOOK_ALLOW_PRIVATE = True
    settings.API_WEBHOOK_TIMEOUT = 1.0
    with WebhookServer(drip=0.05) as hook:  # a byte every 50 ms: each read is quick
        started = time.monotonic()
        with pytest.raises(webhooks.WebhookFailed, match="did not answer within 1 s"):
            webhooks.post(hook.url, b"{}", {})
        elapsed = time.monotonic() - started
    assert elapsed < 5, "a per-read timeout would wait for all 10,000 bytes (500 s)"


def test_an_endless_answer_is_read_only_up_to_the_cap(settings):
    settings.API_WEBHOOK_ALLOW_PRIVATE = True
    gigabyte = 1 << 30
    with WebhookServer(body_bytes=gigabyte) as hook:
        assert webhooks.post(hook.url, b"{}", {}) == 200
        assert hook.done.wait(10), "the server stops once the client hangs up"
    # What the server managed to write before the client left is socket buffers, not 1 GB.
    assert hook.sent_bytes < 64 * 1024 * 1024


def test_only_http_and_https_urls(key_client, team, document):
    for bad in ("ftp://example.com/x", "file:///etc/passwd", "http://:80/x",
                "http://example.com:99999/x", "gopher://127.0.0.1:6379/_INFO"):
        response = key_client.post(url(team, "batches/"), {
            "kind": "qa", "questions": ["Who?"], "document_ids": [document.pk],
            "webhook_url": bad}, format="json")
        assert response.status_code == 400, bad


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for NAME, and a client context that trusts only it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={NAME}",
                    "-addext", f"subjectAltName=DNS:{NAME}"], check=True, capture_output=True)
    return str(cert), str(key), ssl.create_default_context(cafile=str(cert))


def test_https_goes_to_the_checked_address_with_the_name_for_sni_and_the_certificate(
        dns, settings, certificate, monkeypatch):
    settings.API_WEBHOOK_ALLOW_PRIVATE = True
    cert, key, trusting = certificate
    monkeypatch.setattr(webhooks, "TLS_VERIFY", trusting)
    dns[NAME] = ["127.0.0.1"]
    dns["other.example.test"] = ["127.0.0.1"]
    with WebhookServer(tls=(cert, key)) as hook:
        assert webhooks.post(f"https://{NAME}:{hook.port}/hook", b"{}", {}) == 204
        assert hook.server_names == [NAME]
        assert hook.received[0]["headers"]["Host"] == f"{NAME}:{hook.port}"
        # The same address under a name the certificate does not carry: refused.
        with pytest.raises(webhooks.WebhookFailed, match=webhooks.NOT_DELIVERED):
            webhooks.post(f"https://other.example.test:{hook.port}/hook", b"{}", {})
    assert len(hook.received) == 1


def test_a_resolver_that_never_answers_is_bounded_by_the_deadline(settings, monkeypatch,
                                                                  key_client, team, document):
    settings.API_WEBHOOK_TIMEOUT = 0.5
    released = threading.Event()
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: released.wait(60) and [])
    try:
        started = time.monotonic()
        response = key_client.post(url(team, "batches/"), {
            "kind": "qa", "questions": ["Who?"], "document_ids": [document.pk],
            "webhook_url": f"https://{NAME}/hook"}, format="json")
        assert response.json()["webhook_url"] == [webhooks.NO_PUBLIC_ADDRESS]
        with pytest.raises(webhooks.WebhookFailed, match="did not answer within 0.5 s"):
            webhooks.post(f"https://{NAME}/hook", b"{}", {})
        assert time.monotonic() - started < 10, "each wait ends at the 0.5 s deadline"
    finally:
        released.set()  # the lookup threads end too
