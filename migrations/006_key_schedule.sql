-- Tenant scale: the rotator and the key poll read only the issuers that are
-- due or changed, not every issuer.
--
-- changed_xid is the id of the last transaction that wrote the issuer or
-- its keys. A poll remembers the oldest transaction still running when it
-- read (pg_snapshot_xmin) and next time reads every row written by that
-- transaction or a later one: a transaction id says nothing about commit
-- order, but every transaction below that mark had finished and was seen.
--
-- due_at is when the issuer's keys next need a transition, as the rotator
-- last planned it; any write of the issuer or its keys resets it to
-- -infinity, so it is planned again.
create table issuer_key_schedule (
    issuer_name text        primary key references issuers (name) on delete cascade,
    changed_xid xid8        not null default pg_current_xact_id(),
    due_at      timestamptz not null default '-infinity'
);
-- The rotator pages through the due issuers in this index's order, so that
-- the index serves both the range and the order whatever the planner's
-- statistics say (ordered by name alone, stale statistics after a mass
-- update made it scan the primary key: 80 ms at 100,000 issuers).
create index issuer_key_schedule_due on issuer_key_schedule (due_at, issuer_name);
create index issuer_key_schedule_changed on issuer_key_schedule (changed_xid);

insert into issuer_key_schedule (issuer_name) select name from issuers;

-- An issuer's row is made with it; writes of its keys only update the row,
-- because the keys of an issuer being deleted are deleted after it.
create function authz_keys_written() returns trigger language plpgsql as $$
begin
    if tg_table_name = 'issuers' and tg_op = 'INSERT' then
        insert into issuer_key_schedule (issuer_name) values (new.name)
        on conflict (issuer_name) do update set changed_xid = pg_current_xact_id(), due_at = '-infinity';
    elsif tg_table_name = 'issuers' then
        update issuer_key_schedule set changed_xid = pg_current_xact_id(), due_at = '-infinity'
        where issuer_name = new.name;
    elsif tg_op = 'DELETE' then
        update issuer_key_schedule set changed_xid = pg_current_xact_id(), due_at = '-infinity'
        where issuer_name = old.issuer_name;
    else
        update issuer_key_schedule set changed_xid = pg_current_xact_id(), due_at = '-infinity'
        where issuer_name = new.issuer_name;
    end if;
    return null;
end;
$$;

create trigger issuers_keys_written after insert or update on issuers
    for each row execute function authz_keys_written();
create trigger signing_keys_written after insert or update or delete on signing_keys
    for each row execute function authz_keys_written();
