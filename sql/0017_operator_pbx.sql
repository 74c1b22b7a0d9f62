-- 0017: several Asterisk servers (AMI_SERVERS). An operator's phone is registered on one of them,
-- and their session bridge lives there, so their calls go through it: app_user.pbx names it
-- (null: the first server configured). campaigns/fleet.py routes each operator to it.
alter table app_user add column if not exists pbx text;
do $$
begin
    if not exists (select 1 from pg_constraint where conname = 'app_user_pbx_name') then
        alter table app_user add constraint app_user_pbx_name check (pbx ~ '^[a-z][a-z0-9_-]{0,31}$');
    end if;
end $$;
