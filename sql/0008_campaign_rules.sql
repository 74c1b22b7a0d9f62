-- A campaign's calling window and retry policy, as supervisors write them (campaigns/windows.py,
-- campaigns/retry.py give the forms). NULL means the product's defaults: weekdays 9:00-20:00,
-- Saturdays, Sundays and holidays 9:00-17:00, closed 12/29-1/3; never 21:00-8:00 in any case.
alter table campaign
    add column calling_window jsonb check (calling_window is null or jsonb_typeof(calling_window) = 'object'),
    add column retry_policy   jsonb check (retry_policy is null or jsonb_typeof(retry_policy) = 'object');
