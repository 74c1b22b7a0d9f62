-- 0024: where a 経過記録 entry comes from, so that last contact (最終接触: the operator page's
-- 最終接触日 and a segment's not_contacted_days, campaigns/segments.py CONTACT_ENTRY) counts a
-- person reached, not a machine, a menu or someone else:
--   'outcome'  an operator's outcome on a call (party 本人 when it reached the resident);
--   'ivr'      the incoming-call menu (agi/routes.py): a caller ID proves nobody, nobody spoke;
--   'external' written by the delinquency system or an integrator (a visit, the counter, a call).
alter table contact_history add column if not exists source text not null default 'external';
alter table contact_history drop constraint if exists contact_history_source;
alter table contact_history add constraint contact_history_source check (source in ('external', 'outcome', 'ivr'));
update contact_history set source = 'outcome' where disposition_id is not null and source = 'external';
update contact_history set source = 'ivr'
 where source = 'external' and disposition_id is null and recorded_by is null
   and method = 'phone_in' and content like '入電(自動応答)%';
