-- The Keycloak-compatible surface: issuers served at /realms/{name}, the
-- ids Keycloak's admin API uses, default and optional scopes, roles defined
-- on clients (or on the issuer) with their mappings, registration access
-- tokens, and initial access tokens.

alter table issuers
    add column url_style text not null default '' check (url_style in ('', 'keycloak')),
    add column anonymous_registration boolean not null default false;

alter table clients
    add column internal_id text not null default gen_random_uuid()::text,
    add column service_account_id text not null default gen_random_uuid()::text,
    add column optional_scopes text[] not null default '{}',
    add column full_scope_allowed boolean not null default true,
    add column registration_token_digest bytea,
    add column registered_with text not null default '';

create unique index clients_internal_id on clients (issuer_name, internal_id);
create unique index clients_service_account_id on clients (issuer_name, service_account_id);

-- A role belongs to a client of the issuer, or to the issuer itself when
-- client_id is '' (a realm role); a client's roles go with it (DeleteClient).
create table roles (
    role_id     text primary key default gen_random_uuid()::text,
    issuer_name text not null references issuers (name) on delete cascade,
    client_id   text not null default '',
    name        text not null,
    description text not null default '',
    unique (issuer_name, client_id, name)
);

-- kind 'role': mapped to the client's service account; 'scope': allowed in
-- its tokens when full_scope_allowed is false.
create table role_mappings (
    issuer_name text not null,
    client_id   text not null,
    kind        text not null check (kind in ('role', 'scope')),
    role_id     text not null references roles (role_id) on delete cascade,
    primary key (issuer_name, client_id, kind, role_id),
    foreign key (issuer_name, client_id) references clients (issuer_name, client_id) on delete cascade
);

create index role_mappings_role on role_mappings (role_id);

-- A mapping's change changes the tokens of its client: every node's cache
-- hears of it, deletions by cascade included.
create trigger role_mappings_notify after insert or update or delete on role_mappings
    for each row execute function authz_notify_change();

create table initial_access_tokens (
    issuer_name     text        not null references issuers (name) on delete cascade,
    token_id        text        not null,
    digest          bytea       not null unique check (length(digest) = 32),
    created_at      timestamptz not null default now(),
    expires_at      timestamptz,
    remaining_count integer     not null check (remaining_count >= 0),
    primary key (issuer_name, token_id)
);

alter table audit_log add column actor_issuer text not null default '';
