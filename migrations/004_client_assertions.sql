-- Signed-JWT client authentication: a client's registered public key or
-- key-set URL, and the assertion ids already used (replay protection).

alter table clients
    add column public_jwk jsonb,
    add column jwks_uri text not null default '';

create table client_assertion_jtis (
    issuer_name text        not null,
    client_id   text        not null,
    jti         text        not null,
    expires_at  timestamptz not null,
    primary key (issuer_name, client_id, jti)
);

create index client_assertion_jtis_expiry on client_assertion_jtis (expires_at);
