"""node/keys: the percolab-keys file, the recovery phrase, backups and the member key of a
data directory (migration from the legacy PEM)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.identity import create_member_key, load_member_key
from node.keys import backup, keyfile, passphrase
from node.keys import member as member_keys
from node.keys.keyfile import UNENCRYPTED, KeyFileError, KeyRing
from node.keys.member import KeyState
from node.keys.phrase import ALPHABET, PhraseError, decode_phrase, encode_phrase

PASS = "correct horse battery"
_SAMPLE = keyfile.encode(KeyRing.create(), UNENCRYPTED)  # mutated by the fuzz test


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The smallest Argon2id parameters a file may name, so the suite stays fast (one test
    keeps the real ones); no passphrase source from the environment."""
    monkeypatch.setattr(keyfile, "ARGON2_MEMORY_KIB", keyfile.MIN_MEMORY_KIB)
    monkeypatch.setattr(keyfile, "ARGON2_ITERATIONS", 1)
    for name in (passphrase.ENV_PASSPHRASE, passphrase.ENV_PASSPHRASE_FD):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(passphrase, "_process", passphrase._Process())
    member_keys._unlocked.clear()
    yield


def test_round_trip_keeps_seeds_and_extra_entries(tmp_path: Path) -> None:
    ring = KeyRing.create().with_seed("device", os.urandom(32))
    ring = KeyRing(ring.seeds, {"device_cert": b"\x01" * 32, "later": [1, "x"]})
    path = tmp_path / "k"
    keyfile.save(path, ring, PASS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyfile.is_encrypted(path)
    assert keyfile.load(path, PASS) == ring
    assert keyfile.public_keys(path)["root"] == ring.public_key()
    assert ring.seeds["root"] not in path.read_bytes()


def test_real_parameters_round_trip(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(keyfile, "ARGON2_MEMORY_KIB", 64 * 1024)
        mp.setattr(keyfile, "ARGON2_ITERATIONS", 6)
        ring = KeyRing.create()
        keyfile.save(tmp_path / "k", ring, PASS)
        assert keyfile.parse((tmp_path / "k").read_bytes(), "k").header["kdf_params"] == {
            "m": 65536, "t": 6, "p": 2}  # fmt: skip
        assert keyfile.load(tmp_path / "k", PASS) == ring


def test_passphrase_is_nfc_normalised(tmp_path: Path) -> None:
    keyfile.save(tmp_path / "k", KeyRing.create(), "caf\u00e9")
    keyfile.load(tmp_path / "k", "cafe\u0301")


def test_wrong_passphrase_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "k"
    keyfile.save(path, KeyRing.create(), PASS)
    before = path.read_bytes()
    with pytest.raises(keyfile.WrongPassphrase, match=r"^wrong passphrase for .*k$"):
        keyfile.load(path, "nope")
    assert path.read_bytes() == before


@pytest.mark.parametrize("secret", [None, b"bytes", ""])
def test_unencrypted_needs_the_explicit_sentinel(tmp_path: Path, secret: object) -> None:
    with pytest.raises((TypeError, KeyFileError)):
        keyfile.save(tmp_path / "k", KeyRing.create(), secret)  # type: ignore[arg-type]
    assert not (tmp_path / "k").exists()
    keyfile.save(tmp_path / "k", KeyRing.create(), UNENCRYPTED)
    assert not keyfile.is_encrypted(tmp_path / "k")
    keyfile.load(tmp_path / "k", UNENCRYPTED)


@pytest.mark.parametrize("secret", [PASS, UNENCRYPTED])
def test_truncated_file_at_every_length(tmp_path: Path, secret: keyfile.Secret) -> None:
    data = keyfile.encode(KeyRing.create(), secret)
    for n in range(len(data)):
        with pytest.raises(KeyFileError) as info:
            keyfile.decode(data[:n], secret, "member.keys")
        message = str(info.value)
        assert "\n" not in message and "member.keys" in message
        if not isinstance(info.value, keyfile.WrongPassphrase):
            assert "restore it from a backup" in message


@pytest.mark.parametrize("secret", [PASS, UNENCRYPTED])
def test_any_flipped_byte_is_detected(secret: keyfile.Secret) -> None:
    data = keyfile.encode(KeyRing.create(), secret)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x01
        with pytest.raises(KeyFileError):
            keyfile.decode(bytes(bad), secret, "k")


def test_unknown_version(tmp_path: Path) -> None:
    data = bytearray(keyfile.encode(KeyRing.create(), PASS))
    data[len(keyfile.MAGIC)] = 2
    with pytest.raises(keyfile.UnsupportedKeyFile, match="version 2; this release reads version 1"):
        keyfile.decode(bytes(data), PASS, "k")


def test_open_permissions_are_fixed_and_said(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    path = tmp_path / "k"
    keyfile.save(path, KeyRing.create(), PASS)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="node.keys"):
        keyfile.load(path, PASS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "fixed permissions of" in caplog.text


def test_foreign_owner_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")
    path = tmp_path / "k"
    keyfile.save(path, KeyRing.create(), PASS)
    os.chown(path, 65534, 65534)
    with pytest.raises(keyfile.UnsafeKeyFile, match="belongs to another user"):
        keyfile.load(path, PASS)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=400),
    st.binary(max_size=300).map(lambda b: keyfile.MAGIC + b"\x01" + b),
    st.tuples(st.integers(0, 300), st.binary(min_size=1, max_size=8)).map(
        lambda t: _SAMPLE[: t[0]] + t[1] + _SAMPLE[t[0] + len(t[1]) :]),
))  # fmt: skip
def test_decoder_fuzz_any_bytes_give_a_clear_error(data: bytes) -> None:
    for secret in (PASS, UNENCRYPTED):
        try:
            keyfile.decode(data, secret, "fuzz")
        except KeyFileError as exc:
            assert "\n" not in str(exc) and "fuzz" in str(exc)



# ---- recovery phrase ----------------------------------------------------------------------


def test_phrase_round_trip_and_lenient_reading() -> None:
    seed = os.urandom(32)
    phrase = encode_phrase(seed)
    groups = phrase.split(" ")
    assert len(groups) == 12 and all(len(g) == 5 for g in groups)
    assert decode_phrase(phrase) == seed
    assert decode_phrase(phrase.lower().replace(" ", "-")) == seed
    assert decode_phrase(phrase.replace("1", "l").replace("0", "O")) == seed


def test_every_single_wrong_character_is_detected_and_located() -> None:
    seed = os.urandom(32)
    chars = encode_phrase(seed).replace(" ", "")
    for i in range(len(chars)):
        wrong = ALPHABET[(ALPHABET.index(chars[i]) + 7) % 32]
        with pytest.raises(PhraseError, match="mistyped character") as info:
            decode_phrase(chars[:i] + wrong + chars[i + 1 :])
        assert f"character {i % 5 + 1} of group {i // 5 + 1}" in str(info.value)


def test_phrase_other_errors() -> None:
    phrase = encode_phrase(os.urandom(32))
    with pytest.raises(PhraseError, match="not a phrase character"):
        decode_phrase("U" + phrase[1:])
    with pytest.raises(PhraseError, match="60 characters"):
        decode_phrase(phrase[:-2])


# ---- backups ------------------------------------------------------------------------------


def test_backup_round_trip_never_overwrites(tmp_path: Path) -> None:
    ring = KeyRing.create()
    path = tmp_path / "backup.keys"
    backup.write_backup(path, ring, "backup pass")
    assert backup.read_backup(path, "backup pass") == ring
    with pytest.raises(KeyFileError, match="already exists"):
        backup.write_backup(path, ring, "other")
    with pytest.raises(keyfile.WrongPassphrase):
        backup.read_backup(path, "nope")
    with pytest.raises(TypeError):
        backup.write_backup(tmp_path / "b2", ring, UNENCRYPTED)  # type: ignore[arg-type]


# ---- a data directory's member key -------------------------------------------------------


def test_legacy_pem_is_migrated_when_a_passphrase_is_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    old = create_member_key(tmp_path)
    assert member_keys.key_state(tmp_path) is KeyState.LEGACY_PEM
    assert member_keys.key_warning(tmp_path)
    ring = member_keys.unlock(tmp_path)  # no passphrase: used as it is, not migrated
    assert ring is not None and ring.seeds["root"] == old.private_bytes_raw()
    assert member_keys.key_state(tmp_path) is KeyState.LEGACY_PEM
    monkeypatch.setenv(passphrase.ENV_PASSPHRASE, PASS)
    with caplog.at_level(logging.WARNING, logger="node.keys"):
        ring = member_keys.unlock(tmp_path)
    assert "member key migrated" in caplog.text
    assert member_keys.key_state(tmp_path) is KeyState.ENCRYPTED
    assert not (tmp_path / "member.key").exists()
    assert load_member_key(tmp_path) is None
    assert keyfile.load(tmp_path / "member.keys", PASS).seeds["root"] == old.private_bytes_raw()
    assert member_keys.key_warning(tmp_path) is None


def test_interrupted_migration_is_finished(tmp_path: Path) -> None:
    old = create_member_key(tmp_path)
    keyfile.save(tmp_path / "member.keys", KeyRing.from_root_key(old), UNENCRYPTED)
    member_keys.unlock(tmp_path)
    assert not (tmp_path / "member.key").exists()


def test_encrypted_key_without_a_passphrase_says_how(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    member_keys.create(tmp_path, PASS)
    member_keys._unlocked.clear()
    monkeypatch.setattr(passphrase, "can_prompt", lambda: False)
    with pytest.raises(passphrase.NoPassphrase, match="PERCOLAB_PASSPHRASE"):
        member_keys.unlock(tmp_path)
    assert member_keys.root_public(tmp_path) is not None  # the public key needs none


def test_passphrase_through_an_inherited_descriptor(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    env, fd = passphrase.child_env_with_passphrase(PASS, {passphrase.ENV_PASSPHRASE: "x"})
    assert passphrase.ENV_PASSPHRASE not in env
    monkeypatch.setenv(passphrase.ENV_PASSPHRASE_FD, env[passphrase.ENV_PASSPHRASE_FD])
    assert passphrase.non_interactive() == PASS
    assert passphrase.non_interactive() == PASS  # kept: the descriptor is read once
    with pytest.raises(OSError):
        os.fstat(fd)  # closed after reading
