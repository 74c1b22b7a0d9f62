-- 0021: the audit log is append-only for the product's role.
--
-- dialer_app may add entries and read them, never change or delete one: a bug, or anyone who
-- gets to run SQL as the product, cannot rewrite who looked at what. The purge deletes entries
-- past the department's retention through dialer_purge_audit, which runs as the owner and
-- deletes nothing younger than the shortest retention allowed (365 days, 0018's bounds).
revoke update, delete, truncate on audit_log from dialer_app;

create or replace function dialer_purge_audit(department text, before timestamptz) returns bigint
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
    n bigint;
begin
    if before > now() - interval '365 days' then
        raise exception 'the audit log is kept at least 365 days: nothing after % is deleted', now() - interval '365 days'
            using errcode = 'insufficient_privilege';
    end if;
    if department is not null and not dialer_department_visible(department) then
        raise exception 'department % is outside this transaction''s scope', department
            using errcode = 'insufficient_privilege';
    end if;
    with d as (
        delete from audit_log where department_id is not distinct from department and at < before returning 1
    )
    select count(*) into n from d;
    return n;
end $$;

revoke all on function dialer_purge_audit(text, timestamptz) from public;
grant execute on function dialer_purge_audit(text, timestamptz) to dialer_app;
