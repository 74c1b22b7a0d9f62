-- 0028: the hopper finds an operator's own call-backs and the others due in one look, through
-- campaign_target_follow_up (0027); campaign_target_preferred (0011) is read by nothing since and
-- would only be kept up to date.
drop index if exists campaign_target_preferred;
