"""Pilot tests of the passphrase in the TUI against a REAL node: the onboarding form chooses
one (encrypted member.keys), and a node started locked is unlocked from the unlock screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input

from node.keys import keyfile
from tests.tui.helpers import wait_for
from tests.tui.real_node import RealNode
from tui.app import PercolabApp
from tui.client import RpcError
from tui.screens.forms import OnboardingForm
from tui.screens.labs import LabsScreen
from tui.screens.unlock import WRONG_PASSPHRASE, UnlockScreen

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SIZE = (110, 36)
PASS = "correct horse battery"
KDF_TIMEOUT_S = 20.0  # Argon2id runs (~0.4 s each) on a busy machine


def error_text(app: PercolabApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def test_real_onboarding_chooses_a_passphrase(tmp_path: Path) -> None:
    real = RealNode(tmp_path / "data")
    real.data_dir.mkdir()
    real.start()
    try:
        app = PercolabApp(real.socket_path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app._onboarding and app.screen.query("#passphrase"),
                           "onboarding form asking a passphrase")
            form = app.screen
            assert isinstance(form, OnboardingForm)
            first, second = form.query_one("#passphrase", Input), form.query_one(
                "#passphrase2", Input)
            assert first.password and second.password  # masked
            await pilot.press(*"Zoé", "enter")  # Enter goes on to the passphrase
            assert first.has_focus
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: "Choose a passphrase" in error_text(
                app, "#form-error"), "empty passphrase refused")
            await pilot.press(*PASS, "enter")
            assert second.has_focus
            await pilot.press(*"correct horse battery!", "enter")
            await wait_for(pilot, lambda: "differ" in error_text(app, "#form-error"),
                           "mismatch refused")
            assert app.me is None and not (real.data_dir / "member.keys").exists()
            second.value = ""
            second.focus()
            await pilot.press(*PASS, "enter")
            await wait_for(pilot, lambda: app.me is not None, "identity created", KDF_TIMEOUT_S)
            assert app.me is not None and app.me["name"] == "Zoé"
            status = await app.client.call("status")
            assert status["locked"] is False
            assert await app.client.call("lab_create", name="atelier")  # signs at once
        ring = real.data_dir / "member.keys"
        assert keyfile.is_encrypted(ring)
        assert keyfile.load(ring, PASS).public_key() is not None
    finally:
        real.stop()


async def test_real_onboarding_unencrypted_by_choice(tmp_path: Path) -> None:
    real = RealNode(tmp_path / "data")
    real.data_dir.mkdir()
    real.start()
    try:
        app = PercolabApp(real.socket_path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app._onboarding and app.screen.query("#unencrypted"),
                           "onboarding form")
            await pilot.press(*"Sam")
            await pilot.click("#unencrypted")
            form = app.screen
            await wait_for(pilot, lambda: form.query_one("#unencrypted", Checkbox).value,
                           "box ticked")
            assert form.query_one("#passphrase", Input).disabled
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: app.me is not None, "identity created", KDF_TIMEOUT_S)
        assert not keyfile.is_encrypted(real.data_dir / "member.keys")
    finally:
        real.stop()


async def test_real_locked_node_unlocked_from_the_tui(tmp_path: Path) -> None:
    real = RealNode(tmp_path / "data")
    secret = tmp_path / "passphrase"
    secret.write_text(PASS + "\n")
    real.cli("--passphrase-file", str(secret), "init", "--name", "Lea")
    real.cli("--passphrase-file", str(secret), "lab", "create", "atelier")
    real.start("--unlock-later")  # as `percolab` starts its node without a passphrase
    try:
        app = PercolabApp(real.socket_path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, UnlockScreen),
                           "unlock screen")
            # Reading works behind it: the labs screen is filled.
            labs = app.screen_stack[-2]
            assert isinstance(labs, LabsScreen)
            await wait_for(pilot, lambda: labs.table.row_count == 1, "labs listed behind")
            assert (await app.client.call("status"))["locked"] is True
            with pytest.raises(RpcError) as info:
                await app.client.call("post", lab="atelier", title="Too early")
            assert info.value.code == "locked"

            field = app.screen.query_one("#passphrase", Input)
            assert field.password
            await wait_for(pilot, lambda: field.has_focus, "focus in the passphrase field")
            await pilot.press(*"not the passphrase", "enter")
            await wait_for(pilot, lambda: WRONG_PASSPHRASE in error_text(
                app, "#unlock-error"), "wrong passphrase said inline", KDF_TIMEOUT_S)
            assert isinstance(app.screen, UnlockScreen) and field.value == ""
            await wait_for(pilot, lambda: field.has_focus, "focus back in the field")
            await pilot.press(*PASS, "enter")
            await wait_for(pilot, lambda: not isinstance(app.screen, UnlockScreen),
                           "unlocked", KDF_TIMEOUT_S)
            assert isinstance(app.screen, LabsScreen)
            assert (await app.client.call("status"))["locked"] is False
            project = await app.client.call("post", lab="atelier", title="Signed after unlock")
            view = await app.client.call("project", id=project)
            assert view["project"]["title"] == "Signed after unlock"
    finally:
        real.stop()
