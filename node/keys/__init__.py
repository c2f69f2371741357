"""The member's keys at rest: the encrypted key file (keyfile), where passphrases come from
(passphrase), the key ring of a data directory (member), backups (backup) and the recovery
phrase (phrase). docs/keys.md describes the format and the threat model."""
