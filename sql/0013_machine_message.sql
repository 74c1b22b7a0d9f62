-- 0013: the message a campaign leaves on answering machines (a sound file name as Asterisk plays
-- it, e.g. custom/nhi-please-call-back); NULL: machines are hung up on.
alter table campaign
    add column machine_message text
        check (machine_message is null or machine_message ~ '^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$');
