-- 0038: 経過記録 from the delinquency system (`dialer import-contacts`, kind 'contacts'): the visits,
-- counter consultations, letters and calls staff recorded there, so that a household's last
-- contact (最終接触: a segment's not_contacted_days, the operator's record) counts them too.
--   source 'imported'  an entry of such a file; never exported back (it came from there);
--   entry_key          finds the entry again: the file's 経過番号, or the entry's own values
--                      (dialer/store/contacts.py); the same file again adds nothing;
--   reached            the entry reached the resident (接触), as the file says it (接触 column, or
--                      相手 本人); only such entries count as a contact.
alter table contact_history add column if not exists entry_key text check (length(entry_key) <= 200);
alter table contact_history add column if not exists reached boolean;
alter table contact_history add column if not exists import_id bigint;
create unique index if not exists contact_history_entry_key on contact_history (department_id, entry_key)
    where entry_key is not null;

alter table contact_history drop constraint if exists contact_history_source;
alter table contact_history add constraint contact_history_source
    check (source in ('external', 'outcome', 'ivr', 'staff', 'imported'));

alter table import_run drop constraint if exists import_run_kind_check;
alter table import_run add constraint import_run_kind_check
    check (kind in ('households', 'payments', 'plans', 'contacts'));
