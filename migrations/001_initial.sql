-- Issuers, clients with their secret digests, and sealed signing keys.

create table issuers (
    name                   text primary key,
    description            text        not null default '',
    available_scopes       text[]      not null default '{}',
    audience               text        not null default '',
    token_lifetime_seconds integer     not null check (token_lifetime_seconds > 0),
    signing_algorithm      text        not null,
    client_authenticators  text[]      not null,
    revision               bigint      not null default 1,
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now()
);

create table clients (
    issuer_name            text        not null references issuers (name) on delete cascade,
    client_id              text        not null,
    name                   text        not null,
    scopes                 text[]      not null default '{}',
    audience               text        not null default '',
    token_lifetime_seconds integer     not null default 0 check (token_lifetime_seconds >= 0),
    enabled                boolean     not null default true,
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now(),
    primary key (issuer_name, client_id)
);

create table client_secrets (
    issuer_name text        not null,
    client_id   text        not null,
    secret_id   text        not null,
    digest      bytea       not null check (length(digest) = 32),
    hint        text        not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz,
    primary key (issuer_name, client_id, secret_id),
    foreign key (issuer_name, client_id) references clients (issuer_name, client_id) on delete cascade
);

create table signing_keys (
    kid                text primary key,
    issuer_name        text        not null references issuers (name) on delete cascade,
    algorithm          text        not null,
    state              text        not null check (state in ('pending', 'active', 'retired')),
    public_jwk         jsonb       not null,
    sealed_private_key bytea       not null,
    kek_id             text        not null,
    created_at         timestamptz not null default now()
);

create index signing_keys_issuer on signing_keys (issuer_name, created_at);

-- At most one key signs for an issuer at any time.
create unique index signing_keys_one_active on signing_keys (issuer_name) where state = 'active';
