-- 0030: cases an operator hands to municipal staff (DOMAIN: 納付相談等の必要な者を区職員に引き継ぐ).
-- An outcome marked to_staff (分納相談希望 by default) opens a case on the staff's list
-- (web/handovers.py): open → taken by a member of staff → done, with what was agreed, which goes
-- into the household's 経過記録. One case per outcome; a household's cases go with it (retention).
alter table disposition_code add column if not exists to_staff boolean not null default false;
update disposition_code set to_staff = true where department_id is null and code = 'installment';

-- a case closed by staff writes the household's 経過記録 ('staff': counted as a contact when the
-- person owing was spoken with, as an operator's outcome is, campaigns/segments.py CONTACT_ENTRY)
alter table contact_history drop constraint if exists contact_history_source;
alter table contact_history add constraint contact_history_source
    check (source in ('external', 'outcome', 'ivr', 'staff'));

create table if not exists handover (
    id             bigint generated always as identity primary key,
    department_id  text not null references department (id),
    household_id   bigint not null references household (id) on delete cascade,
    disposition_id bigint unique references disposition (id) on delete set null,
    operator_id    bigint references app_user (id),
    reason         text not null,                 -- the outcome's code
    status         text not null default 'open' check (status in ('open', 'taken', 'done')),
    taken_by       bigint references app_user (id),
    taken_at       timestamptz,
    done_at        timestamptz,
    result         text not null default '' check (length(result) <= 2000),
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now()
);
create index if not exists handover_open on handover (department_id, created_at) where status <> 'done';
create index if not exists handover_household on handover (household_id);

alter table handover enable row level security;
alter table handover force row level security;
drop policy if exists department_only on handover;
create policy department_only on handover
    using (dialer_department_visible(department_id)) with check (dialer_department_visible(department_id));
grant select, insert, update, delete on handover to dialer_app;

do $$
begin
    if current_setting('server_version_num')::int >= 170000 then
        execute 'grant maintain on handover to dialer_app';  -- the purge VACUUMs it (sql/0018)
    end if;
end
$$;
