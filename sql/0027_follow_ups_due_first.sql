-- 0027: a call-back or promise follow-up due is called before the rest of its campaign's list,
-- by anyone once its hold for the operator who spoke with the resident has run out (a low-ranked
-- household that asked to be called at 14:00 is not left behind a long list). Few rows: a small
-- index serves that look first (dialer/store/targets.py, _LEASE_FOLLOW_UP).
create index if not exists campaign_target_follow_up on campaign_target (campaign_id, next_attempt_at)
    where state = 'pending' and preferred_until is not null;
