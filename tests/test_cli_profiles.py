"""``runmonitor profiles …`` as a real subprocess: settings file, keyring and the simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runmonitor.simulator import Simulator
from tests.conftest import scan_for_secrets
from tests.helpers import cli_env

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Home:
    path: Path
    env: dict[str, str]
    sim: Simulator

    def run(self, *args: str, secrets: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **{f"RUNMONITOR_SECRET_{k.upper()}": v for k, v in (secrets or {}).items()}}
        return subprocess.run(
            [sys.executable, "-m", "runmonitor", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    @property
    def settings(self) -> dict[str, object]:
        return dict(json.loads((self.path / "config" / "settings.json").read_text()))

    @property
    def keyring_text(self) -> str:
        file = self.path / "test-keyring.json"
        return file.read_text() if file.exists() else ""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    with Simulator(seed=41, time_scale=60.0) as sim:
        yield Home(tmp_path / "home", cli_env(tmp_path / "home"), sim)


def add_invision(home: Home, name: str = "prod", key: str | None = None) -> subprocess.CompletedProcess[str]:
    api_key = key or home.sim.demo_connection("invision")["api_key"]
    return home.run(
        "profiles",
        "add",
        "invision",
        "--name",
        name,
        "--conn",
        f"base_url={home.sim.base_url('invision')}",
        "--no-prompt",
        secrets={"api_key": api_key},
    )


def test_add_list_test_and_use_a_profile(home: Home) -> None:
    empty = home.run("profiles", "list")
    assert empty.returncode == 0
    assert "No profiles yet" in empty.stdout

    added = add_invision(home)
    assert added.returncode == 0, added.stderr
    key = home.sim.demo_connection("invision")["api_key"]
    assert key not in json.dumps(home.settings)  # the settings file never holds a secret
    assert key in home.keyring_text  # the keyring does

    listed = json.loads(home.run("profiles", "list", "--json").stdout)
    assert [(p["name"], p["service"], p["secrets"], p["sign_in_needed"]) for p in listed] == [
        ("prod", "invision", {"api_key": True}, False)
    ]
    tested = home.run("profiles", "test", "prod")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.startswith("OK:")

    home.sim.force("invision", "success")
    flow = home.sim.demo_request("invision")["data_flow_id"]
    run = home.run(
        "run",
        "create",
        "invision",
        "--profile",
        "prod",
        "--param",
        f"data_flow_id={flow}",
        "--wait",
        "--poll",
        "0.1",
    )
    assert run.returncode == 0, run.stderr
    assert "SUCCEEDED" in run.stdout
    assert home.sim.creates("invision") == 1


def test_a_rejected_or_missing_key_is_sign_in_needed(home: Home) -> None:
    assert add_invision(home).returncode == 0
    edited = home.run(
        "profiles", "edit", "prod", "--secret", "api_key", secrets={"api_key": "a-revoked-key-123"}
    )
    assert edited.returncode == 0, edited.stderr
    rejected = home.run("profiles", "test", "prod")
    assert rejected.returncode == 3
    assert rejected.stdout.startswith("Sign-in needed")
    assert "a-revoked-key-123" not in rejected.stdout + rejected.stderr

    missing = home.run(
        "profiles",
        "add",
        "invision",
        "--name",
        "nokey",
        "--conn",
        "base_url=https://x.example",
        "--no-prompt",
    )
    assert missing.returncode == 0
    assert "Sign-in needed until you store: api_key" in missing.stdout
    tested = home.run("profiles", "test", "nokey")
    assert tested.returncode == 3
    assert "not stored" in tested.stdout


def test_unreachable_profile_is_reported(home: Home) -> None:
    with Simulator() as gone:
        url = gone.base_url("invision")
    assert add_invision(home, "dead").returncode == 0
    assert home.run("profiles", "edit", "dead", "--conn", f"base_url={url}").returncode == 0
    tested = home.run("profiles", "test", "dead")
    assert tested.returncode == 3
    assert tested.stdout.startswith("Unreachable")


def test_bad_input_names_the_field_and_changes_nothing(home: Home) -> None:
    assert add_invision(home).returncode == 0
    before = home.settings
    duplicate = add_invision(home)
    assert duplicate.returncode == 2
    assert "name" in duplicate.stderr
    assert "exists already" in duplicate.stderr
    bad_url = home.run(
        "profiles", "add", "marquez", "--name", "m", "--conn", "base_url=ftp://x", "--no-prompt"
    )
    assert bad_url.returncode == 2
    assert "base_url" in bad_url.stderr
    leaked = home.run("profiles", "add", "invision", "--name", "x", "--conn", "api_key=on-the-command-line")
    assert leaked.returncode == 2
    assert "RUNMONITOR_SECRET_API_KEY" in leaked.stderr
    unknown = home.run("profiles", "test", "nobody")
    assert unknown.returncode == 2
    assert "no profile named 'nobody'" in unknown.stderr
    assert "Traceback" not in duplicate.stderr + bad_url.stderr + leaked.stderr + unknown.stderr
    assert home.settings == before


def test_export_has_no_secrets_and_imports_with_clash_choices(home: Home, tmp_path: Path) -> None:
    assert add_invision(home).returncode == 0
    exported = tmp_path / "profiles.json"
    result = home.run("profiles", "export", str(exported))
    assert result.returncode == 0, result.stderr
    data = json.loads(exported.read_text())
    assert data["profiles"][0]["secrets_needed"] == ["api_key"]
    assert scan_for_secrets([exported.parent], [home.sim.demo_connection("invision")["api_key"]])[1] == []

    clash = home.run("profiles", "import", str(exported))
    assert clash.returncode == 2
    assert "--on-clash" in clash.stderr
    assert len(home.settings["profiles"]) == 1  # type: ignore[arg-type]

    renamed = home.run("profiles", "import", str(exported), "--on-clash", "rename")
    assert renamed.returncode == 0, renamed.stderr
    names = sorted(p["name"] for p in home.settings["profiles"])  # type: ignore[attr-defined]
    assert names == ["prod", "prod (2)"]
    skipped = home.run("profiles", "import", str(exported), "--on-clash", "skip")
    assert skipped.returncode == 0
    assert "0 added" in skipped.stdout

    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    refused = home.run("profiles", "import", str(bad))
    assert refused.returncode == 2
    assert "cannot import" in refused.stderr
    assert len(home.settings["profiles"]) == 2  # type: ignore[arg-type]


def test_remove_deletes_the_profile_and_its_secrets(home: Home) -> None:
    assert add_invision(home).returncode == 0
    key = home.sim.demo_connection("invision")["api_key"]
    assert key in home.keyring_text
    unconfirmed = home.run("profiles", "remove", "prod")
    assert unconfirmed.returncode == 2
    assert "--yes" in unconfirmed.stderr
    removed = home.run("profiles", "remove", "prod", "--yes")
    assert removed.returncode == 0
    assert home.settings["profiles"] == []
    assert key not in home.keyring_text
