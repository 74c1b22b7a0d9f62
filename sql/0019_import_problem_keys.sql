-- 0019: whose row a line of an import's error report is about (世帯番号, 宛名番号 as the row gave
-- them, when they could be read), so that a deletion request (`dialer retention erase`) also
-- deletes the report's lines that quote the household's cells. Lines written before this
-- migration carry neither: they go at the report's own retention, as before.
alter table import_problem
    add column if not exists household_no text not null default '',
    add column if not exists atena_no text not null default '';
