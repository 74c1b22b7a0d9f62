-- 0043: a campaign's talk script (トークスクリプト), shown to its operators with the resident's
-- details filled in (campaigns/scripts.py). Empty: none.
alter table campaign add column if not exists script text not null default ''
    check (length(script) <= 4000);
