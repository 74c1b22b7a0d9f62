-- 0039: a row that names a household names one of its own department's, enforced by the key
-- itself, as person, phone, debt and campaign_target already are (0003, 0004). With a key on
-- household (id) alone, SQL run in one department's scope could write a 経過記録 entry, a promise,
-- a case for staff, a payment, a plan or a call onto another department's household (row-level
-- security checks the row's own department_id, not the household's), and the key's error told a
-- household id of the other department from one that does not exist (privacy QA). The household's
-- deletion (retention) then also took the other department's rows, uncounted in its record.
alter table payment drop constraint if exists payment_household_id_fkey;
alter table payment drop constraint if exists payment_household_department;
alter table payment add constraint payment_household_department foreign key (household_id, department_id)
    references household (id, department_id) on delete cascade;

alter table installment_plan drop constraint if exists installment_plan_household_id_fkey;
alter table installment_plan drop constraint if exists installment_plan_household_department;
alter table installment_plan add constraint installment_plan_household_department
    foreign key (household_id, department_id) references household (id, department_id) on delete cascade;

alter table promise drop constraint if exists promise_household_id_fkey;
alter table promise drop constraint if exists promise_household_department;
alter table promise add constraint promise_household_department foreign key (household_id, department_id)
    references household (id, department_id) on delete cascade;

alter table contact_history drop constraint if exists contact_history_household_id_fkey;
alter table contact_history drop constraint if exists contact_history_household_department;
alter table contact_history add constraint contact_history_household_department
    foreign key (household_id, department_id) references household (id, department_id) on delete cascade;

alter table handover drop constraint if exists handover_household_id_fkey;
alter table handover drop constraint if exists handover_household_department;
alter table handover add constraint handover_household_department foreign key (household_id, department_id)
    references household (id, department_id) on delete cascade;

-- a call: its household (none for a caller nobody identified, or once the purge made it anonymous)
-- and its campaign (none for an incoming call) are its department's
alter table attempt drop constraint if exists attempt_household_id_fkey;
alter table attempt drop constraint if exists attempt_household_department;
alter table attempt add constraint attempt_household_department foreign key (household_id, department_id)
    references household (id, department_id);
alter table attempt drop constraint if exists attempt_campaign_id_fkey;
alter table attempt drop constraint if exists attempt_campaign_department;
alter table attempt add constraint attempt_campaign_department foreign key (campaign_id, department_id)
    references campaign (id, department_id);
