-- Scheduled key rotation: per-issuer schedule, key lifecycle timestamps, and
-- the revoked state for emergencies.

alter table issuers
    add column key_rotation_seconds integer not null default 0 check (key_rotation_seconds >= 0),
    add column key_publish_lead_seconds integer not null default 0 check (key_publish_lead_seconds >= 0),
    add column key_retire_seconds integer not null default 0 check (key_retire_seconds >= 0);

alter table signing_keys
    add column activate_at timestamptz,
    add column activated_at timestamptz,
    add column retired_at timestamptz,
    add column delete_at timestamptz,
    drop constraint signing_keys_state_check,
    add constraint signing_keys_state_check check (state in ('pending', 'active', 'retired', 'revoked'));

update signing_keys set activated_at = created_at where state = 'active';
