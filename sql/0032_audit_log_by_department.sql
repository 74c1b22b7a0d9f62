-- 0032: the audit log by department, and no 宛名番号 kept in it.
--
-- (1) dialer_app reads the entries of the departments in its scope and those of no department
--     (login failures, server-wide changes): outside any scope, a query of the log no longer
--     returns every department's entries (a privacy council's QA read the tax department's from
--     the NHI side). Writing stays open to every scope, as before (a login is recorded before
--     its user's scope exists), and append-only (0021). Not forced: the owner (migrations,
--     dialer_purge_audit) stays outside.
alter table audit_log enable row level security;
drop policy if exists read_own on audit_log;
create policy read_own on audit_log for select
    using (department_id is null or dialer_department_visible(department_id));
drop policy if exists add_any on audit_log;
create policy add_any on audit_log for insert with check (true);

-- (2) Looking up a caller by 宛名番号/世帯番号 kept the number typed for the log's five years, past
--     the resident's own erasure (`dialer retention erase`). The number goes; whether it was found,
--     and the household it found (an id, meaningless once the household is gone), stay.
update audit_log set detail = detail - 'key'
where action in ('inbound.identify', 'inbound.identify_refused') and detail ? 'key';
