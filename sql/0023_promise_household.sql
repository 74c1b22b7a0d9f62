-- 0023: a household's open promises, found by household: the hopper checks, for each household it
-- leases, whether another campaign holds a promise to pay from it (dialer/store/targets.py).
create index if not exists promise_household_open on promise (household_id) where status = 'open';
