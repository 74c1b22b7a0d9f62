-- 0041: each dialer is judged dead by its own heartbeat (six missed beats of DIALER_HEARTBEAT_S),
-- not by the setting of whoever looks: a dialer beating every 30 s was taken for dead by one
-- beating every 2 s, which returned its households and took its operators' phones (QA).
-- Null: a dialer of an earlier version, judged by the looker's setting as before.
alter table dialer_process add column if not exists dead_after_s double precision
    check (dead_after_s is null or dead_after_s > 0);
