-- 0015: every running dialer says it is alive (campaigns/engine.py, every HEARTBEAT_S), so the
-- households a crashed one was holding come back within a minute, not when their leases run out.
-- A household is still never taken while its call is up at Asterisk (dialer/store/targets.py).
create table dialer_process (
    owner       text primary key,               -- the name it leases under (campaign_target.lease_owner)
    host        text not null,
    pid         integer not null,
    link        text not null default '',       -- the Asterisk its calls go through (attempt.link)
    started_at  timestamptz not null default now(),
    seen_at     timestamptz not null default now()
);
