-- 0037: which dialer drives each operator's phone session. Two dialers sharing one Asterisk could
-- both hold a session to one phone: pressed Ready on both at once, or one taking over, from a dead
-- dialer, a session another had already taken over (its ChannelId still names the dead one). Both
-- then put residents through to that phone, and two residents heard each other. A dialer claims the
-- operator here before it opens or takes over a session, and only while no live dialer holds it.
create table if not exists operator_phone (
    user_id  bigint primary key references app_user (id) on delete cascade,
    owner    text not null,                     -- dialer_process.owner
    since    timestamptz not null default now()
);
grant select, insert, update, delete on operator_phone to dialer_app;  -- (not left to 0005's defaults)
