-- A campaign's predictive pacing settings as a supervisor writes them (campaigns/pacer.py,
-- Settings.parse: target_abandon <= 0.03, max_lines_per_operator 1-10). NULL means the defaults
-- (3 %, 3 lines per operator).
alter table campaign
    add column pacing jsonb check (pacing is null or jsonb_typeof(pacing) = 'object');
