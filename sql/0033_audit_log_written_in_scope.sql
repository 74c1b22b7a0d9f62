-- 0033: an audit entry is written for the department whose scope the transaction is in.
--
-- 0032 let dialer_app add entries for any department from any scope: a query run in the NHI
-- scope could forge an entry in the tax department's log. Now an entry names a department the
-- scope sees, or none; outside any scope (the web app before a request opens its user's
-- department: the login itself) any, as before, since the login's own entry is written there.
drop policy if exists add_any on audit_log;
drop policy if exists add_in_scope on audit_log;
create policy add_in_scope on audit_log for insert
    with check (department_id is null or dialer_department_visible(department_id)
                or coalesce(current_setting('dialer.department', true), '') = '');
