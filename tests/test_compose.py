"""compose.yaml: no Docker engine runs here, so check its structure and wiring."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

COMPOSE = yaml.safe_load((Path(__file__).resolve().parent.parent / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def test_services_and_images():
    assert {"postgres", "redis", "web", "worker-ingest", "worker-llm", "vllm", "beat"} <= set(
        SERVICES
    )
    assert SERVICES["postgres"]["image"].startswith("pgvector/pgvector:")
    assert SERVICES["redis"]["image"].startswith("redis:")
    assert SERVICES["vllm"]["image"].startswith("vllm/vllm-openai")
    for name in ("web", "worker-ingest", "worker-llm", "beat"):
        assert SERVICES[name]["build"] == "."


def test_every_service_has_a_healthcheck():
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), name


def test_app_services_are_wired_to_postgres_redis_and_vllm():
    for name in ("web", "worker-ingest", "worker-llm", "worker-interactive", "beat"):
        env = SERVICES[name]["environment"]
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert env["LLM_BACKEND"] == "vllm" and env["LLM_BASE_URL"] == "http://vllm:8000/v1"
        assert "postgres" in SERVICES[name]["depends_on"]
    assert "vllm" in SERVICES["worker-llm"]["depends_on"]
    assert "vllm" in SERVICES["worker-interactive"]["depends_on"]


def test_queues_and_gpu_reservations():
    ingest = " ".join(SERVICES["worker-ingest"]["command"])
    llm = " ".join(SERVICES["worker-llm"]["command"])
    assert "-Q ingest" in ingest and "-Q interactive,batch" in llm
    # Chat has children of its own; time limits and the memory cap need prefork children.
    interactive = " ".join(SERVICES["worker-interactive"]["command"])
    assert "-Q interactive " in interactive
    for command in (ingest, llm, interactive):
        assert "--pool threads" not in command and "--pool solo" not in command
    assert "-Q control" in " ".join(SERVICES["beat"]["command"])
    for name in ("worker-llm", "vllm"):
        devices = SERVICES[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]


def test_vllm_flags_the_backend_relies_on():
    flags = " ".join(SERVICES["vllm"]["command"])
    for flag in (
        "--enable-prefix-caching",
        "--enable-chunked-prefill",
        "--served-model-name",
        "--max-model-len",
    ):
        assert flag in flags


def test_named_volumes():
    assert {"pgdata", "redisdata", "media"} <= set(COMPOSE["volumes"])
    assert "pgdata:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]


def test_web_runs_the_supervised_web_tier_of_make_run():
    """Processes each on a socket of their own (manage.py serve), not uvicorn's --workers."""
    command = SERVICES["web"]["command"][-1]
    serve = command.split("&&")[-1].split()
    assert serve[:4] == ["exec", "python", "manage.py", "serve"] and "--web-only" in serve
    # All interfaces of the container: the published port reaches it there.
    assert serve[serve.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    assert serve[serve.index("--port") + 1] == "8000"  # what the health check and ports use
    assert "uvicorn" not in command and "--workers" not in command
    assert "migrate --noinput" in command  # --web-only migrates nothing itself


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration).groups()
    return float(number) * units[unit]


def test_docker_stop_waits_longer_than_serve_drains():
    # Docker's default (10 s) would SIGKILL `serve` while its children still finish requests.
    from apps.core.management.commands.serve import STOP_SECONDS

    for name in ("web", "worker-ingest", "worker-llm", "worker-interactive", "beat"):
        assert _seconds(SERVICES[name]["stop_grace_period"]) > STOP_SECONDS, name
