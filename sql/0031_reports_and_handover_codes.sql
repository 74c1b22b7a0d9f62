-- 0031: 日報・月報 read a department's calls by the day they were placed (dialer/store/reports.py;
-- the calls stay, anonymous, after their households are deleted, so the table only grows); and
-- a department's own 分納相談希望 (a label of its own over the shared code) hands its cases to staff
-- as the shared one does since 0030, which set only the shared row.
create index if not exists attempt_department_originated on attempt (department_id, originated_at);
update disposition_code set to_staff = true where code = 'installment' and department_id is not null and not to_staff;
