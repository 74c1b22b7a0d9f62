-- 0026: a debt the delinquency system's export no longer lists is closed, not owed forever.
--
-- A layout that says its files are complete (`complete = true`: each lists every debt still owed,
-- as a 滞納者一覧 does) closes the debts an earlier file of that layout gave and a newer one does
-- not (paid, written off, reassessed to nothing): closed_on is that export's 抽出日. A closed debt
-- counts nothing in the household's arrears, so a household whose every debt is closed leaves its
-- campaigns at once; if a later export lists the debt again it is open again
-- (dialer/store/merge.py).
alter table debt add column if not exists closed_on date;

-- 未納額 of a closed debt is 0 (a stored generated column cannot change its expression before
-- PostgreSQL 17: it is made again; the table is rewritten once).
do $$
begin
    if pg_get_expr((select adbin from pg_attrdef a join pg_attribute c on c.attrelid = a.adrelid and c.attnum = a.adnum
                    where a.adrelid = 'debt'::regclass and c.attname = 'unpaid_yen'), 'debt'::regclass)
       not like '%closed_on%' then
        alter table debt drop column unpaid_yen;
        alter table debt add column unpaid_yen bigint generated always as
            (case when closed_on is null then greatest(assessed_yen - paid_yen, 0) else 0 end) stored;
    end if;
end $$;

-- A household leaves its campaigns when its arrears reach zero (0011), and the entry says why:
-- paid (a debt still open, paid off), closed (every debt closed by a complete export), or
-- moved_out (no debt left at all: the person who owed moved to another household).
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
        select d.household_id, sum(d.unpaid_yen) as unpaid, min(d.due_date) filter (where d.unpaid_yen > 0) as oldest,
               bool_or(d.closed_on is null) as any_open
        from debt d join x on x.id = d.household_id group by d.household_id
    ), p as (
        select p.household_id, bool_or(p.valid and not p.do_not_call and p.stopped_at is null) as dialable
        from phone p join x on x.id = p.household_id group by p.household_id
    ), s as (
        select h.id, h.unpaid_yen as before, coalesce(d.unpaid, 0) as unpaid, d.oldest,
               coalesce(p.dialable, false) as dialable,
               case when d.household_id is null then 'moved_out' when d.any_open then 'paid' else 'closed' end as why
        from household h join x on x.id = h.id
        left join d on d.household_id = h.id
        left join p on p.household_id = h.id
    ), changed as (
        update household h set unpaid_yen = s.unpaid, oldest_due_date = s.oldest, dialable = s.dialable
        from s
        where h.id = s.id and (h.unpaid_yen, h.oldest_due_date, h.dialable) is distinct from (s.unpaid, s.oldest, s.dialable)
        returning h.id, s.before, s.unpaid, s.why
    )
    -- Nothing owed any more: the household leaves every campaign at once, including a call already
    -- queued (leased) for it; the engine never dials a target that is no longer leased.
    update campaign_target t
    set state = 'excluded', last_outcome = c.why, lease_owner = null, lease_expires_at = null
    from changed c
    where t.household_id = c.id and c.before > 0 and c.unpaid = 0 and t.state in ('pending', 'leased')
    $q$ using ids;
    perform set_config('enable_nestloop', nestloop, true);
end $fn$;
