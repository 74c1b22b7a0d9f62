-- 0011: numbers the dialer found dead or wrong, and households that come back to one operator.
--
-- A number that was not in service (SIP 404/unallocated) or that an operator recorded as 番号誤り
-- is stopped: never dialled again, by any campaign (`stopped_at`, `stopped_reason`); the
-- household's next number is tried. An import does not touch these columns, so a newer export
-- that still carries the number does not bring it back. A household whose numbers are all stopped
-- is no longer dialable (the summary below).
alter table phone
    add column stopped_at timestamptz,
    add column stopped_reason text;

-- A call-back the resident asked for, or the follow-up of a promise to pay, comes back to the
-- operator who spoke to them while `preferred_until` has not passed; then to anyone.
alter table campaign_target
    add column preferred_operator_id bigint references app_user (id) on delete set null,
    add column preferred_until timestamptz;
create index campaign_target_preferred on campaign_target (preferred_operator_id, next_attempt_at)
    where state = 'pending' and preferred_operator_id is not null;

-- Dialable now also means: not stopped.
create or replace function refresh_household_summary(ids bigint[]) returns void language plpgsql as $fn$
declare
    nestloop text := current_setting('enable_nestloop');
begin
    if cardinality(ids) > 1000 then
        perform set_config('enable_nestloop', 'off', true);
    end if;
    execute $q$
    with x as (select distinct id from unnest($1) as u (id)),
    d as (
        select d.household_id, sum(d.unpaid_yen) as unpaid, min(d.due_date) filter (where d.unpaid_yen > 0) as oldest
        from debt d join x on x.id = d.household_id group by d.household_id
    ), p as (
        select p.household_id, bool_or(p.valid and not p.do_not_call and p.stopped_at is null) as dialable
        from phone p join x on x.id = p.household_id group by p.household_id
    ), s as (
        select h.id, h.unpaid_yen as before, coalesce(d.unpaid, 0) as unpaid, d.oldest,
               coalesce(p.dialable, false) as dialable
        from household h join x on x.id = h.id
        left join d on d.household_id = h.id
        left join p on p.household_id = h.id
    ), changed as (
        update household h set unpaid_yen = s.unpaid, oldest_due_date = s.oldest, dialable = s.dialable
        from s
        where h.id = s.id and (h.unpaid_yen, h.oldest_due_date, h.dialable) is distinct from (s.unpaid, s.oldest, s.dialable)
        returning h.id, s.before, s.unpaid
    )
    -- Paid off: the household leaves every campaign at once, including a call already queued
    -- (leased) for it; the engine never dials a target that is no longer leased.
    update campaign_target t
    set state = 'excluded', last_outcome = 'paid', lease_owner = null, lease_expires_at = null
    from changed c
    where t.household_id = c.id and c.before > 0 and c.unpaid = 0 and t.state in ('pending', 'leased')
    $q$ using ids;
    perform set_config('enable_nestloop', nestloop, true);
end $fn$;

select refresh_household_summary(array(select id from household));
