"""The machine line that benchmark tables carry: the figures mean nothing without it."""

from __future__ import annotations

import pytest

from bench.machine import cpu_model, describe_machine, machine_line, machine_lines


def test_cpu_model_is_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n")
    assert cpu_model(info) == "AMD EPYC 7B13"


def test_cpu_model_without_cpuinfo_still_names_something(tmp_path):
    assert cpu_model(tmp_path / "absent")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_embedded_machine_records_the_compute_dtype_and_threads(monkeypatch, dtype):
    monkeypatch.setenv("LLM_TORCH_DTYPE", dtype)
    monkeypatch.setenv("LLM_TORCH_THREADS", "3")
    info = describe_machine("embedded")
    assert info["dtype"] == dtype
    assert info["torch_threads"] == 3
    assert isinstance(info["native_bf16"], bool)
    line = machine_line(info)
    assert f"{dtype} (" in line and "torch threads: 3" in line and f"{info['cpus']} CPUs" in line


def test_a_served_model_records_only_the_host():
    info = describe_machine("vllm")
    assert "dtype" not in info  # the server chooses it, not this process
    assert machine_line(info).startswith(f"Machine: {info['cpus']} CPUs, ")


def test_reports_of_runs_saved_before_the_machine_was_recorded_still_render():
    assert machine_lines({"haystack": []}) == []
    info = describe_machine("vllm")
    assert machine_lines({"machine": info}) == [machine_line(info), ""]
