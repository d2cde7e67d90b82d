import pytest
from cryptography.fernet import Fernet

from store.vault import Vault, VaultError


def test_roundtrip_and_rotation(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = Vault([old]).encrypt_json({"password": "s3cret!", "totp_secret": "JBSWY3DPEHPK3PXP"})
    assert b"s3cret" not in token
    rotated_vault = Vault([new, old])
    assert rotated_vault.decrypt_json(token)["password"] == "s3cret!"
    rotated = rotated_vault.rotate(token)
    assert Vault([new]).decrypt_json(rotated)["totp_secret"] == "JBSWY3DPEHPK3PXP"
    with pytest.raises(VaultError) as e:
        Vault([new]).decrypt(token)
    assert "s3cret" not in str(e.value)


def test_default_key_file_is_private(tmp_path):
    v = Vault.from_settings("", tmp_path)
    assert (tmp_path / "vault.key").stat().st_mode & 0o077 == 0
    assert Vault.from_settings("", tmp_path).decrypt(v.encrypt(b"x")) == b"x"


def test_rotate_all_accounts(tmp_path):
    from core.credentials import Credentials
    from store import accounts, repo
    from store.db import make_engine, migrate, session_factory

    engine = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    migrate(engine)
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with session_factory(engine)() as s:
        org = repo.get_or_create_org(s, "O", "Org")
        a = accounts.upsert_account(s, Vault([old]), org_id=org.id, portal_key="medicaid", base_url="http://x",
                                    creds=Credentials(username="u", password="pw-1", totp_secret="ABC"))
        accounts.save_state(Vault([old]), a, {"cookies": [{"name": "sid", "value": "v"}]})
        assert accounts.rotate_all(s, Vault([new, old])) == 1
        s.commit()
        assert accounts.credentials(Vault([new]), a).password == "pw-1"
        assert accounts.saved_state(Vault([new]), a)["cookies"][0]["value"] == "v"
