-- 0045: the product's role cannot read password hashes. A query bug or an injection running as
-- dialer_app (any scope) can no longer copy every user's hash to crack it offline. dialer_app may
-- still set a hash (new users, a new password) and the login checks one, through
-- password_hash_of(): the hash of one active login, the only one it is given.
--
-- Column privileges: dialer_app reads every column of app_user but password_hash. A column added
-- to app_user later is unreadable by dialer_app until its migration grants it (a query naming it
-- fails at once, in the tests, rather than a hash becoming readable).

create or replace function password_hash_of(of_login text) returns text
language sql stable security definer set search_path = pg_catalog, public as $$
    select u.password_hash from app_user u where u.login = of_login and u.active
$$;

revoke all on function password_hash_of(text) from public;
grant execute on function password_hash_of(text) to dialer_app;

revoke select on app_user from dialer_app;
do $$
declare
    readable text;
begin
    select string_agg(quote_ident(column_name), ', ' order by ordinal_position) into readable
    from information_schema.columns
    where table_schema = 'public' and table_name = 'app_user' and column_name <> 'password_hash';
    execute format('grant select (%s) on app_user to dialer_app', readable);
end $$;
