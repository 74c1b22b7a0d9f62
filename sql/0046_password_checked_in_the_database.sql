-- 0046: the stored digest never leaves the database. password_hash_of() (0045) returned a hash to
-- anyone who could run SQL as dialer_app, so an injection could still read every active user's
-- hash (`select password_hash_of(login) from app_user`) and crack them offline (review).
--
-- The login now asks for the scrypt parameters and salt of one login (no digest), computes the
-- digest of the password typed, and asks whether it matches. The salt is not secret; the digest is
-- not returned by anything. The checks are counted on a sequence, which a rolled-back transaction
-- does not undo: more than 600 in a minute (all logins together; a call centre's morning needs far
-- fewer) are refused, so an injection cannot test guesses through the function at speed. The
-- product's own login lock, per login and at far fewer failures, comes first.

drop function if exists password_hash_of(text);

create sequence if not exists password_check_seq;  -- minute * 1,000,000,000 + the checks in it
revoke all on sequence password_check_seq from dialer_app;  -- (the default grants give it usage)

-- 'scrypt$N$r$p$salt$length' (the digest's length in bytes), or null: no active user of that login
create or replace function password_params_of(of_login text) returns text
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
    select regexp_replace(u.password_hash, '\$[^$]*$', '')
           || '$' || length(decode(substring(u.password_hash from '[^$]*$'), 'base64'))
    from public.app_user u where u.login = of_login and u.active
$$;

create or replace function password_matches(of_login text, digest text) returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
    minute bigint := floor(extract(epoch from clock_timestamp()) / 60);
    counted bigint := nextval('public.password_check_seq');
    stored text;
begin
    if counted / 1000000000 < minute then  -- the first check of this minute
        perform setval('public.password_check_seq', minute * 1000000000 + 1);
        counted := minute * 1000000000 + 1;
    end if;
    if counted % 1000000000 > 600 then
        raise exception 'too many password checks (600 a minute)' using errcode = 'insufficient_privilege';
    end if;
    select u.password_hash into stored from public.app_user u where u.login = of_login and u.active;
    return stored is not null and stored = regexp_replace(stored, '[^$]*$', '') || digest;
end $$;

revoke all on function password_params_of(text) from public;
revoke all on function password_matches(text, text) from public;
grant execute on function password_params_of(text) to dialer_app;
grant execute on function password_matches(text, text) to dialer_app;
