-- phone (household_id, key) is unique and leads with household_id: it serves every lookup and
-- foreign-key check by household that phone_household did, so one index is kept up to date on
-- each phone written instead of two.
drop index if exists phone_household;
