-- 0029: installment plans (分納) come from the delinquency system, where staff agree them: a plans
-- file (`dialer import-plans`, kind 'plans') gives each plan by its number and its whole schedule.
-- A plan is found again by (department, 計画番号); the export date it was last reported by keeps
-- an older file from undoing a newer one; updated_at is when anything about it last changed (the
-- retention rules read it: a plan changed lately keeps its household).
alter table installment_plan add column if not exists plan_no text check (length(plan_no) <= 64);
alter table installment_plan add column if not exists reported_as_of date;
alter table installment_plan add column if not exists import_id bigint;
alter table installment_plan add column if not exists updated_at timestamptz;
update installment_plan set updated_at = created_at where updated_at is null;
alter table installment_plan alter column updated_at set default now();
alter table installment_plan alter column updated_at set not null;
create unique index if not exists installment_plan_no on installment_plan (department_id, plan_no)
    where plan_no is not null;

alter table import_run drop constraint if exists import_run_kind_check;
alter table import_run add constraint import_run_kind_check check (kind in ('households', 'payments', 'plans'));
