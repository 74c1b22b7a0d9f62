-- 0005: department separation enforced by PostgreSQL itself (row-level security).
--
-- NHI and tax share one server. The product's connections run as the role dialer_app, which is
-- not a superuser and does not bypass RLS; every row of a resident's data is visible to it only
-- when its department_id equals the connection's `dialer.department` setting:
--   * the web app's pool has no department: a query outside a department scope sees nothing;
--     each request runs in a transaction that sets its user's department (SET LOCAL);
--   * the engine's pool works for all departments ('*'); where it shows a resident to an operator
--     it narrows the transaction to that operator's department;
--   * an import runs in a transaction narrowed to the department it imports for.
-- So a query with a forgotten or wrong WHERE still returns only the user's department's rows, and
-- an insert or update can never write a row into another department (WITH CHECK).
-- Migrations run as the database owner (a superuser, or a role with BYPASSRLS), not as dialer_app.

do $$
begin
    if not exists (select from pg_roles where rolname = 'dialer_app') then
        create role dialer_app nologin nosuperuser nobypassrls;
    end if;
end $$;

grant usage on schema public to dialer_app;
grant select, insert, update, delete on all tables in schema public to dialer_app;
grant usage, select on all sequences in schema public to dialer_app;
alter default privileges in schema public grant select, insert, update, delete on tables to dialer_app;
alter default privileges in schema public grant usage, select on sequences to dialer_app;
revoke insert, update, delete on schema_migration from dialer_app;

create function dialer_department_visible(department text) returns boolean
language sql stable parallel safe as $$
    select department = current_setting('dialer.department', true)
        or current_setting('dialer.department', true) = '*'
$$;

do $$
declare
    t text;
begin
    foreach t in array array[
        'household', 'person', 'phone', 'debt', 'payment', 'installment_plan', 'promise', 'contact_history',
        'related_party', 'campaign', 'campaign_target', 'attempt', 'disposition', 'import_run'
    ] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy department_only on %I using (dialer_department_visible(department_id)) '
            'with check (dialer_department_visible(department_id))', t);
    end loop;
end $$;

-- Tables without a department column follow their parent row.
alter table attempt_event enable row level security;
alter table attempt_event force row level security;
create policy department_only on attempt_event
    using (exists (select 1 from attempt a where a.id = attempt_id))
    with check (exists (select 1 from attempt a where a.id = attempt_id));

alter table installment_due enable row level security;
alter table installment_due force row level security;
create policy department_only on installment_due
    using (exists (select 1 from installment_plan p where p.id = plan_id))
    with check (exists (select 1 from installment_plan p where p.id = plan_id));

alter table import_problem enable row level security;
alter table import_problem force row level security;
create policy department_only on import_problem
    using (exists (select 1 from import_run r where r.id = import_id))
    with check (exists (select 1 from import_run r where r.id = import_id));

-- Disposition codes: a department sees the shared list and its own.
alter table disposition_code enable row level security;
alter table disposition_code force row level security;
create policy department_or_shared on disposition_code
    using (department_id is null or dialer_department_visible(department_id))
    with check (department_id is null or dialer_department_visible(department_id));
