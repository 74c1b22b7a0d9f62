-- 0025: a dialer that names itself in the operator sessions it opens (ChannelId
-- dlr-s<user>-<dialer>-<n>, since 2026-12-06) says so. A session without that name was opened by
-- an older dialer; during a rolling upgrade it may be taken over once no older dialer is alive
-- on the same Asterisk, instead of once no other dialer at all is (campaigns/adoption.py).
-- Older dialers register without the column: false.
alter table dialer_process add column if not exists marks_sessions boolean not null default false;
