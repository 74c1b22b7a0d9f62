-- 0044: `dialer audit` finds a household's entries and a user's without reading the whole log:
-- the entries naming a household or a call in their detail (a caller looked up, a listen-in), and
-- what a user did. (The household and call objects themselves: audit_log_object, sql/0001.)
create index if not exists audit_log_detail_household on audit_log ((detail ->> 'household_id'))
    where detail ? 'household_id';
create index if not exists audit_log_detail_attempt on audit_log ((detail ->> 'attempt_id'))
    where detail ? 'attempt_id';
create index if not exists audit_log_user_at on audit_log (user_id, at) where user_id is not null;
