-- 0003: the database itself refuses to dial a household (or a number) twice at once.
--
-- A household can sit in several campaigns; a lease is per campaign row, so without this two
-- operators on two campaigns could call the same household at the same moment.
create unique index campaign_target_one_live_lease on campaign_target (household_id) where state = 'leased';

-- The number actually dialled is kept on the attempt (the phone row may change later), and
-- at most one attempt per number is open at a time, across households and departments.
alter table attempt add column dialed_number text;
update attempt a set dialed_number = p.number from phone p where p.id = a.phone_id and a.dialed_number is null;
create unique index attempt_one_live_call_per_number on attempt (dialed_number)
    where ended_at is null and dialed_number is not null;

-- A target's department is its campaign's and its household's: enforced, not assumed, so that
-- a wrong import can never show one department's household to another's operators.
alter table campaign add constraint campaign_id_department unique (id, department_id);
alter table household add constraint household_id_department unique (id, department_id);
alter table campaign_target
    add constraint campaign_target_campaign_department
        foreign key (campaign_id, department_id) references campaign (id, department_id) on delete cascade,
    add constraint campaign_target_household_department
        foreign key (household_id, department_id) references household (id, department_id) on delete cascade;

-- Failed logins per user ID are counted for the lockout.
create index audit_log_login_failed on audit_log ((detail ->> 'login'), at) where action = 'login.failed';
