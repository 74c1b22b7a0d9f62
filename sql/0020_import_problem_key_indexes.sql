-- 0020: find the error report lines a deletion request erases (0019) without reading every
-- line of every report: the lines that name a 世帯番号 or 宛名番号, by that number.
create index if not exists import_problem_household_no on import_problem (household_no) where household_no <> '';
create index if not exists import_problem_atena_no on import_problem (atena_no) where atena_no <> '';
