"""Importing the settings only reads: no process started, no file or folder written, no
connection made, os.environ unchanged (issue 18). Run in a fresh interpreter in an empty
working folder with an unset var dir, with an audit hook that records every such act."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from apps.stack import BASE_DIR

PROBE = textwrap.dedent("""
    import json, os, sys
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    ACTS = ("subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.posix_spawn",
            "os.exec", "os.spawn", "os.mkdir", "os.rename", "os.remove", "os.rmdir",
            "os.symlink", "os.link", "os.chmod", "os.truncate", "os.putenv", "os.unsetenv",
            "socket.connect", "shutil.copyfile")
    seen = []

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else \\
                bool((flags or 0) & WRITE_FLAGS)
            if writes:
                seen.append(["open for writing", str(path)])
        elif event in ACTS:
            seen.append([event, repr(args)[:200]])

    before = dict(os.environ)
    sys.addaudithook(hook)
    exec(sys.argv[1])
    changed = sorted(set(before.items()) ^ set(os.environ.items()))
    print(json.dumps({"acts": seen, "environ_changed": changed}))
""")


def _probe(code: str, tmp_path) -> tuple[dict, list[str]]:
    work, var = tmp_path / "work", tmp_path / "var"
    work.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(work), "PYTHONPATH": str(BASE_DIR),
           "PYTHONDONTWRITEBYTECODE": "1", "SCRIPTORIUM_VAR_DIR": str(var),
           "DJANGO_SETTINGS_MODULE": "apps.settings", "TMPDIR": str(work)}
    result = subprocess.run([sys.executable, "-c", PROBE, code], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p != work)
    return json.loads(result.stdout.strip().splitlines()[-1]), written


def test_importing_the_settings_starts_nothing_and_writes_nothing(tmp_path):
    report, written = _probe("import apps.settings", tmp_path)
    assert report == {"acts": [], "environ_changed": []}
    assert written == []  # not even the var dir


def test_nor_do_the_test_settings(tmp_path):
    report, written = _probe("import apps.settings_test", tmp_path)
    assert report == {"acts": [], "environ_changed": []} and written == []


@pytest.mark.parametrize("act, expected", [
    ("open('x', 'w').close()", "open for writing"),
    ("import subprocess; subprocess.run(['true'])", "subprocess.Popen"),
    ("import os; os.environ['X'] = '1'", "os.putenv"),
])
def test_the_probe_sees_each_kind_of_act(tmp_path, act, expected):
    """The check above can fail: each act it looks for is recorded."""
    report, _ = _probe(f"import apps.settings; {act}", tmp_path)
    assert expected in [kind for kind, _ in report["acts"]]
