-- A campaign's segment: which of its department's households it calls, as a supervisor writes the
-- rules (campaigns/segments.py, parse). NULL means everyone who owes and has a dialable number.
alter table campaign
    add column segment jsonb check (segment is null or jsonb_typeof(segment) = 'object');

-- The segment rules' lookups per household: a conversation within N days, a broken promise.
create index attempt_household_connected on attempt (household_id, connected_at) where connected_at is not null;
create index promise_household on promise (household_id);
