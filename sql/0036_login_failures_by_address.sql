-- 0036: failed logins are also counted by the address they came from (LOGIN_FAILURES_PER_ADDRESS):
-- one password tried against many user IDs locks none of them, but it comes from one address.
create index if not exists audit_log_login_failed_by_address on audit_log (remote_addr, at)
    where action = 'login.failed';
