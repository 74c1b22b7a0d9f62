-- 0012: the operators assigned to a campaign. A campaign with none is open to every operator of
-- its department; with some, only they can take its calls (the operator page lists only the
-- campaigns they may work, and the engine refuses Ready and stops serving anyone taken off).
create table campaign_operator (
    campaign_id   bigint not null references campaign (id) on delete cascade,
    user_id       bigint not null references app_user (id) on delete cascade,
    department_id text not null references department (id),
    primary key (campaign_id, user_id)
);
create index campaign_operator_user on campaign_operator (user_id);

alter table campaign_operator enable row level security;
alter table campaign_operator force row level security;
create policy department_only on campaign_operator
    using (dialer_department_visible(department_id)) with check (dialer_department_visible(department_id));
