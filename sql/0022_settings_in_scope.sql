-- 0022: a department's settings and disposition codes are changed only from its own scope; the
-- users only by the `dialer` commands.
--
-- Before, dialer_app could UPDATE any department row (its callback number, read out to residents
-- in the abandon message; its retention, which decides what the purge deletes) and the shared
-- disposition codes from any scope: a query bug in an NHI request could change the tax
-- department's. Now, as with residents' rows (0005):
--   * every scope may read the departments (names and settings, no resident in them);
--   * a department's row is changed only in its own scope, or in the all-departments scope '*'
--     that the engine and the `dialer` commands use;
--   * a department is added or removed only in scope '*' (`dialer departments add`);
--   * the shared disposition codes (department_id null) are added or changed only in scope '*'
--     (`dialer codes add`); a department's own codes, as before, in its scope;
--   * users (who may log in, with what role and department) are added or changed only in scope
--     '*' (`dialer users`): a query bug in a web request cannot make anyone an administrator or
--     switch a login back on. Every scope reads them (the login page has none yet).
-- The web app's pool has no scope: an administrator's page that changes a department opens that
-- department's scope for the one change.

-- (not forced: the owner, who runs migrations and dialer_purge_audit, stays outside it)
alter table department enable row level security;

create policy read_all on department for select using (true);
create policy change_own on department for update
    using (dialer_department_visible(id)) with check (dialer_department_visible(id));
create policy add_everywhere on department for insert
    with check (current_setting('dialer.department', true) = '*');
create policy remove_everywhere on department for delete
    using (current_setting('dialer.department', true) = '*');

drop policy department_or_shared on disposition_code;
create policy read_own_or_shared on disposition_code for select
    using (department_id is null or dialer_department_visible(department_id));
-- dialer_department_visible(null) is true only in scope '*'
create policy add_own on disposition_code for insert
    with check (dialer_department_visible(department_id));
create policy update_own on disposition_code for update
    using (dialer_department_visible(department_id)) with check (dialer_department_visible(department_id));
create policy remove_own on disposition_code for delete
    using (dialer_department_visible(department_id));

-- (not forced, as for department)
alter table app_user enable row level security;
create policy read_all on app_user for select using (true);
create policy add_everywhere on app_user for insert
    with check (current_setting('dialer.department', true) = '*');
create policy change_everywhere on app_user for update
    using (current_setting('dialer.department', true) = '*')
    with check (current_setting('dialer.department', true) = '*');
create policy remove_everywhere on app_user for delete
    using (current_setting('dialer.department', true) = '*');
