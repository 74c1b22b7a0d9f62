-- 0002: an attempt's durations, computed by PostgreSQL from its timeline stamps.
-- ring_s: from ringing (or the Originate, when nothing rang) to the answer (or the end).
-- talk_s: from reaching the operator (or the answer) to the end; null when nobody answered.
alter table attempt
    add column ring_s numeric(9, 2) generated always as (
        round(extract(epoch from coalesce(answered_at, ended_at) - coalesce(ringing_at, originated_at)), 2)
    ) stored,
    add column talk_s numeric(9, 2) generated always as (
        round(extract(epoch from ended_at - coalesce(connected_at, answered_at)), 2)
    ) stored;
