-- 0016: a resident who calls in and asks for a person is put through to a free operator of the
-- department (campaigns/inbound.py), with the record popped as for an outbound call. Such a call
-- is an attempt too (timeline, operator, outcome, disposition), with dial_mode 'inbound' and:
--   no campaign and no household target (it was not dialled for one);
--   no household when the caller's number matched none or several (the operator asks who calls);
--   channel_id = Asterisk's own Uniqueid of the caller's channel (we did not originate it);
--   caller_number = the number that called (personal data, like dialed_number);
--   owner = the dialer process handling it (dialer_process): its calls are closed if it dies.
alter table attempt alter column campaign_id drop not null;
alter table attempt alter column target_id drop not null;
alter table attempt alter column household_id drop not null;
alter table attempt add column if not exists caller_number text;
alter table attempt add column if not exists owner text;

do $$
begin
    if not exists (select 1 from pg_constraint where conname = 'attempt_outbound_has_target') then
        alter table attempt add constraint attempt_outbound_has_target
            check (dial_mode = 'inbound' or (campaign_id is not null and target_id is not null
                                             and household_id is not null));
    end if;
end $$;

create index if not exists attempt_open_inbound on attempt (owner) where target_id is null and ended_at is null;
