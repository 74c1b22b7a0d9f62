-- 0035: a letter's 経過記録 entry names the campaign whose list it was on, so that the campaign's
-- last list can be made again (a download that failed after the letters were recorded) without
-- recording the letters twice. Entries of lists made before this are not linked.
alter table contact_history
    add column if not exists campaign_id bigint references campaign (id) on delete set null;
create index if not exists contact_history_letter_list on contact_history (campaign_id, at)
    where method = 'letter' and campaign_id is not null;
