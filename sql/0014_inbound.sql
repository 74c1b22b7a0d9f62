-- 0014: residents calling in (asterisk-conf [dialer-inbound], agi/routes.py).
-- The caller's number is looked up among the department's phones: index it.
create index phone_department_number on phone (department_id, number);
