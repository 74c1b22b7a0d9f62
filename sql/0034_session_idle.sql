-- 0034: staff and administrators' sessions end after a while without anything done on them
-- (SESSION_IDLE_MINUTES, 30 by default): their pages show whole records of residents, and a
-- screen left open in a call centre should not. Operators' and supervisors' pages stay open all
-- day by design (they wait for calls; the floor); their sessions keep the absolute limit only.
alter table web_session
    add column if not exists last_active  timestamptz not null default now(),
    add column if not exists idle_minutes integer not null default 0 check (idle_minutes >= 0);
