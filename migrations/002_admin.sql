-- Roles, the audit log, and change notifications for every node's caches.

alter table issuers add column client_roles text[] not null default '{}';
alter table clients add column roles text[] not null default '{}';

create index clients_by_name on clients (issuer_name, name, client_id);

create table audit_log (
    id          bigint generated always as identity primary key,
    at          timestamptz not null default now(),
    actor       text        not null,
    action      text        not null,
    resource    text        not null,
    outcome     text        not null,
    status      integer     not null,
    detail      text        not null default ''
);

-- Every write to a record that a node caches tells all nodes through
-- NOTIFY, inside the writing transaction, so a node never hears of a change
-- that was rolled back. Triggers also catch writes made outside authz.
create function authz_notify_change() returns trigger language plpgsql as $$
declare
    rec record;
    payload jsonb;
begin
    if tg_op = 'DELETE' then
        rec := old;
    else
        rec := new;
    end if;
    if tg_table_name = 'issuers' then
        payload := jsonb_build_object('kind', 'issuer', 'issuer', rec.name);
    elsif tg_table_name = 'signing_keys' then
        payload := jsonb_build_object('kind', 'key', 'issuer', rec.issuer_name);
    else
        payload := jsonb_build_object('kind', 'client', 'issuer', rec.issuer_name, 'client', rec.client_id);
    end if;
    perform pg_notify('authz_changes', payload::text);
    return null;
end;
$$;

create trigger issuers_notify after insert or update or delete on issuers
    for each row execute function authz_notify_change();
create trigger clients_notify after insert or update or delete on clients
    for each row execute function authz_notify_change();
create trigger client_secrets_notify after insert or update or delete on client_secrets
    for each row execute function authz_notify_change();
create trigger signing_keys_notify after insert or update or delete on signing_keys
    for each row execute function authz_notify_change();
