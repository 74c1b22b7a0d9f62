-- An import ends with ANALYZE of the tables it filled, so the planner does not go on taking a
-- table that just grew by a million rows for empty (the hopper's next-targets query and the
-- summary refresh depend on it). ANALYZE needs the table's owner or, from PostgreSQL 17, the
-- MAINTAIN privilege; dialer_app is neither, so without this grant the statement only warned
-- "permission denied to analyze" and the statistics waited for autovacuum. On PostgreSQL 16 and
-- older there is no MAINTAIN: the import's ANALYZE still warns and autovacuum catches up later.
do $$
begin
    if current_setting('server_version_num')::int >= 170000 then
        execute 'grant maintain on household, person, phone, debt to dialer_app';
    end if;
end
$$;
