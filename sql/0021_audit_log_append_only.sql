-- 0021: the audit log is append-only for the product's role.
--
-- dialer_app may add entries and read them, never change or delete one: a bug, or anyone who
-- gets to run SQL as the product, cannot rewrite who looked at what. The purge deletes entries
-- past the department's retention through dialer_purge_audit, which runs as the owner, in the
-- transaction's department scope, and deletes nothing the department's retain_audit_days keeps
-- (the log outside any department: as long as the department that keeps its own the longest).
revoke update, delete, truncate on audit_log from dialer_app;

create or replace function dialer_purge_audit(department text, before timestamptz) returns bigint
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
    n bigint;
    keep_days integer;
begin
    if department is not null and not dialer_department_visible(department) then
        raise exception 'department % is outside this transaction''s scope', department
            using errcode = 'insufficient_privilege';
    end if;
    select case when department is null then max(d.retain_audit_days) else max(d.retain_audit_days)
                filter (where d.id = department) end
      into keep_days from department d;
    keep_days := greatest(coalesce(keep_days, 1826), 365);
    -- (the purge counts the days back from midnight in Tokyo: its cut-off is always earlier)
    if before > now() - make_interval(days => keep_days) then
        raise exception 'the audit log is kept % days here: nothing after % is deleted', keep_days,
            now() - make_interval(days => keep_days)
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
