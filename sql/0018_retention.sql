-- 0018: data kept only as long as it is needed, then deleted, with a record of each deletion
-- (the councils' approvals: 不要となった情報の消去と消去の記録). dialer/store/retention.py does it.
--
-- Each department says how long it keeps (days):
--   retain_closed_days         a household that owes nothing and has had no activity (import change,
--                              payment, call, contact, promise, plan) for this long: its residents,
--                              numbers, debts, payments, plans, promises and 経過記録 are deleted; its
--                              calls stay as statistics without anything that identifies anyone
--   retain_import_report_days  an import's error report (it quotes the rejected cells)
--   retain_audit_days          the audit log (who looked at what)
-- Nothing is purged for a department until an administrator has confirmed its retention
-- (retention_confirmed_at: `dialer retention set`, or 保存 on the page): an upgrade never deletes
-- anything on its first night.
alter table department
    add column if not exists retention_confirmed_at timestamptz,
    add column if not exists retain_closed_days integer not null default 365,
    add column if not exists retain_import_report_days integer not null default 90,
    add column if not exists retain_audit_days integer not null default 1826;

do $$
begin
    if not exists (select 1 from pg_constraint where conname = 'department_retention_bounds') then
        alter table department add constraint department_retention_bounds check (
            retain_closed_days between 30 and 3650
            and retain_import_report_days between 7 and 3650
            and retain_audit_days between 365 and 3650);
    end if;
end $$;

-- A call whose household was deleted keeps its campaign, times and outcome (daily reports, the
-- abandon rate) and loses its household, target, number and the operator's note.
alter table attempt add column if not exists purged_at timestamptz;
alter table attempt drop constraint if exists attempt_outbound_has_target;
alter table attempt add constraint attempt_outbound_has_target
    check (dial_mode = 'inbound' or purged_at is not null
           or (campaign_id is not null and target_id is not null and household_id is not null));

-- The error report's rows go; the run (file name, counts) stays and says when its report went.
alter table import_run add column if not exists problems_purged_at timestamptz;

-- The record of every deletion (消去記録): what rule, what cut-off, how many rows of each kind.
-- It names no resident. department_id null: the server-wide part (expired sessions, the audit
-- log of actions outside any department, upload files left by an import that was killed).
create table if not exists purge_run (
    id            bigint generated always as identity primary key,
    department_id text references department (id),
    started_at    timestamptz not null default now(),
    finished_at   timestamptz,
    status        text not null default 'running' check (status in ('running', 'done', 'failed')),
    -- schedule: the daily purge; command: `dialer retention purge`; request: `dialer retention
    -- erase`, named households deleted at once (a deletion request, data given by mistake)
    trigger       text not null check (trigger in ('schedule', 'command', 'request')),
    user_name     text not null default '',      -- who ran the command (the OS user), '' for the schedule
    policy        jsonb not null default '{}',   -- the retention days applied
    cutoffs       jsonb not null default '{}',   -- the instants before which data went
    counts        jsonb not null default '{}',   -- rows deleted or made anonymous, per kind
    vacuumed      boolean not null default false, -- the freed rows were also vacuumed away
    message       text not null default ''       -- why it failed; for a request, its reference
);
create index if not exists purge_run_department on purge_run (department_id, started_at desc);

alter table purge_run enable row level security;
alter table purge_run force row level security;
drop policy if exists department_or_server on purge_run;
create policy department_or_server on purge_run
    using (department_id is null or dialer_department_visible(department_id))
    with check (department_id is null or dialer_department_visible(department_id));
grant select, insert, update on purge_run to dialer_app;
revoke delete on purge_run from dialer_app;  -- the record of a deletion is never deleted

-- ... nor changed once finished (only `vacuumed`, set after the VACUUM that follows it).
create or replace function purge_run_final() returns trigger language plpgsql as $$
begin
    if old.status <> 'running' and (new.department_id, new.started_at, new.finished_at, new.status, new.trigger,
                                    new.user_name, new.policy, new.cutoffs, new.counts, new.message)
            is distinct from (old.department_id, old.started_at, old.finished_at, old.status, old.trigger,
                              old.user_name, old.policy, old.cutoffs, old.counts, old.message) then
        raise exception 'purge record % is finished and is never changed', old.id;
    end if;
    return new;
end $$;
drop trigger if exists purge_run_final on purge_run;
create trigger purge_run_final before update on purge_run for each row execute function purge_run_final();

-- Deleting a household cascades to its rows and clears references to them; each of those steps
-- looks rows up by a column that had no index of its own (one sequential scan per deleted row).
create index if not exists attempt_household on attempt (household_id) where household_id is not null;
create index if not exists attempt_target on attempt (target_id) where target_id is not null;
create index if not exists attempt_phone on attempt (phone_id) where phone_id is not null;
-- campaign_target by household: PostgreSQL 18 finds it through the unique (campaign_id,
-- household_id) index by skip scan (one descent per campaign); older servers need their own.
do $$
begin
    if current_setting('server_version_num')::int < 180000 then
        create index if not exists campaign_target_household on campaign_target (household_id);
    end if;
end
$$;
create index if not exists payment_household on payment (household_id);
create index if not exists phone_person on phone (person_id) where person_id is not null;
create index if not exists debt_person on debt (person_id) where person_id is not null;
create index if not exists installment_plan_person on installment_plan (person_id) where person_id is not null;
create index if not exists audit_log_department_at on audit_log (department_id, at);
create index if not exists web_session_expires on web_session (expires_at);

-- The purge VACUUMs the tables it deleted from (dialer/store/retention.py), so the rows are gone
-- from the files and not only from queries; that needs the MAINTAIN privilege (PostgreSQL 17+).
do $$
begin
    if current_setting('server_version_num')::int >= 170000 then
        execute 'grant maintain on household, person, related_party, phone, debt, payment, installment_plan, '
                'installment_due, promise, contact_history, campaign_target, attempt, disposition, '
                'import_problem, audit_log to dialer_app';
    end if;
end
$$;
