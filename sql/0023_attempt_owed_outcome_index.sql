-- An operator's conversations that may still owe an outcome (a dialer restarted during their
-- wrap-up), looked up on every page (re)connect and Ready: campaigns/engine.py _outcome_still_owed.
create index if not exists attempt_operator_ended on attempt (operator_id, ended_at) where connected_at is not null;
