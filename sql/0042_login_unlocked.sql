-- 0042: an administrator lifts the lock failed logins put on a user ID or an address
-- (`dialer users unlock`; a new password lifts the ID's): the lockout counts failures from the
-- last such entry. The entries are few; this finds the last one without reading the audit log.
create index if not exists audit_log_login_unlocked on audit_log (at) where action = 'login.unlocked';
