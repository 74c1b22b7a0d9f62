-- 0040: the 抽出日 of the 経過記録 file that last gave an imported entry (`dialer import-contacts
-- --as-of`): an older file imported again (an upload of last week's file) leaves an entry a newer
-- file corrected as it is, as households and plans already are.
alter table contact_history add column if not exists reported_as_of date;
