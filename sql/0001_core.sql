-- 0001: the core of the product: departments, users, residents, campaigns, attempts, audit.
-- Forward-only: never edit a migration once it has shipped; add a new file.
-- Money is integer yen. Times are timestamptz, shown in Asia/Tokyo.

create table department (
    id              text primary key check (id ~ '^[a-z][a-z0-9_]{1,31}$'),
    name_ja         text not null,
    name_en         text not null,
    -- the number residents can call back (read out in the abandon message, shown as caller ID)
    callback_number text not null default ''
);

create table app_user (
    id             bigint generated always as identity primary key,
    login          text not null unique check (login ~ '^[A-Za-z0-9._-]{2,64}$'),
    display_name   text not null check (length(display_name) between 1 and 100),
    role           text not null check (role in ('operator', 'supervisor', 'staff', 'admin')),
    department_id  text references department (id),
    extension      text unique check (extension ~ '^[0-9]{2,8}$'),
    password_hash  text not null,
    active         boolean not null default true,
    created_at     timestamptz not null default now(),
    -- only an administrator may stand outside every department
    check (role = 'admin' or department_id is not null)
);

create table web_session (
    token_hash  bytea primary key,
    user_id     bigint not null references app_user (id) on delete cascade,
    csrf_token  text not null,
    lang        text not null default 'ja' check (lang in ('ja', 'en')),
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null
);
create index web_session_user on web_session (user_id);

create table household (
    id            bigint generated always as identity primary key,
    department_id text not null references department (id),
    household_no  text not null,                 -- 世帯番号
    postal_code   text not null default '',
    address       text not null default '',
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    unique (department_id, household_no)
);

create table person (
    id            bigint generated always as identity primary key,
    household_id  bigint not null references household (id) on delete cascade,
    department_id text not null references department (id),
    atena_no      text not null,                 -- 宛名番号
    name_kanji    text not null,
    name_kana     text not null default '',
    birth_date    date,
    is_head       boolean not null default false, -- 世帯主
    unique (department_id, atena_no)
);
create index person_household on person (household_id);

create table phone (
    id            bigint generated always as identity primary key,
    household_id  bigint not null references household (id) on delete cascade,
    person_id     bigint references person (id) on delete set null,
    department_id text not null references department (id),
    number        text not null check (number ~ '^0[0-9]{9,10}$'),  -- national digits
    kind          text not null check (kind in ('landline', 'mobile', 'ip', 'other')),
    source        text not null default 'import',
    valid         boolean not null default true,
    do_not_call   boolean not null default false,
    priority      integer not null default 0
);
create index phone_household on phone (household_id);

create table debt (
    id            bigint generated always as identity primary key,
    household_id  bigint not null references household (id) on delete cascade,
    person_id     bigint references person (id) on delete set null,
    department_id text not null references department (id),
    debt_type     text not null,                 -- nhi, resident_tax, light_vehicle_tax, ...
    fiscal_year   integer not null check (fiscal_year between 1989 and 2200),  -- 年度 (西暦)
    installment   integer not null default 0 check (installment between 0 and 12),  -- 期別
    assessed_yen  bigint not null check (assessed_yen >= 0),                -- 調定額
    paid_yen      bigint not null default 0 check (paid_yen >= 0),          -- 収納額
    due_date      date not null,                                           -- 納期限
    late_fee_yen  bigint not null default 0 check (late_fee_yen >= 0)      -- 延滞金
);
create index debt_household on debt (household_id);

create table campaign (
    id            bigint generated always as identity primary key,
    department_id text not null references department (id),
    name          text not null check (length(name) between 1 and 100),
    dial_mode     text not null check (dial_mode in ('preview', 'progressive', 'predictive')),
    caller_id     text not null default '' check (caller_id ~ '^[0-9]{0,15}$'),
    status        text not null default 'active' check (status in ('draft', 'active', 'paused', 'finished')),
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    unique (department_id, name)
);

-- The hopper: one row per household in a campaign. A row is leased (FOR UPDATE SKIP LOCKED)
-- before it is dialled, so two dialer processes never take the same household; a crashed
-- process's leases expire and the rows come back.
create table campaign_target (
    id               bigint generated always as identity primary key,
    campaign_id      bigint not null references campaign (id) on delete cascade,
    household_id     bigint not null references household (id) on delete cascade,
    department_id    text not null references department (id),
    priority         integer not null default 100,
    state            text not null default 'pending' check (state in ('pending', 'leased', 'done', 'excluded')),
    lease_owner      text,
    lease_expires_at timestamptz,
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    last_outcome     text,
    unique (campaign_id, household_id)
);
create index campaign_target_next on campaign_target (campaign_id, priority, next_attempt_at, id)
    where state = 'pending';
create index campaign_target_leases on campaign_target (lease_expires_at) where state = 'leased';

create table attempt (
    id            bigint generated always as identity primary key,
    campaign_id   bigint not null references campaign (id),
    target_id     bigint not null references campaign_target (id),
    household_id  bigint not null references household (id),
    department_id text not null references department (id),
    phone_id      bigint references phone (id) on delete set null,
    operator_id   bigint references app_user (id),
    dial_mode     text not null,
    channel_id    text not null unique,          -- our ChannelId on the Originate
    link          text not null default '',      -- which Asterisk
    phase         text not null default 'originating',
    outcome       text,
    hangup_by     text,
    hangup_cause  integer,
    amd_status    text,
    originated_at timestamptz not null default now(),
    ringing_at    timestamptz,
    answered_at   timestamptz,
    connected_at  timestamptz,
    ended_at      timestamptz
);
create index attempt_campaign on attempt (campaign_id, originated_at);
create index attempt_open on attempt (id) where ended_at is null;

-- The attempt's full timeline, one row per milestone, in arrival order.
create table attempt_event (
    id         bigint generated always as identity primary key,
    attempt_id bigint not null references attempt (id) on delete cascade,
    at         timestamptz not null default clock_timestamp(),
    kind       text not null,
    detail     jsonb not null default '{}'
);
create index attempt_event_attempt on attempt_event (attempt_id, id);

-- The configurable list of outcomes an operator can record. department_id null = shared list.
create table disposition_code (
    id               bigint generated always as identity primary key,
    department_id    text references department (id),
    code             text not null check (code ~ '^[a-z][a-z0-9_]{1,40}$'),
    label_ja         text not null,
    label_en         text not null,
    reached          boolean not null,              -- 本人接触
    needs_promise    boolean not null default false, -- 納付約束: date and amount required
    needs_callback   boolean not null default false, -- 折り返し希望: a time required
    closes_target    boolean not null default true,  -- no further calls in this campaign
    sort             integer not null default 100,
    active           boolean not null default true
);
create unique index disposition_code_unique on disposition_code (coalesce(department_id, ''), code);

create table disposition (
    id                 bigint generated always as identity primary key,
    attempt_id         bigint not null unique references attempt (id),
    client_token       uuid not null unique,       -- the page's idempotency key: resent = stored once
    operator_id        bigint not null references app_user (id),
    department_id      text not null references department (id),
    code               text not null,
    note               text not null default '' check (length(note) <= 2000),
    promise_date       date,
    promise_amount_yen bigint check (promise_amount_yen > 0),
    callback_at        timestamptz,
    created_at         timestamptz not null default now()
);

-- Every view of a resident's record, every export, every login: who, what, when.
create table audit_log (
    id            bigint generated always as identity primary key,
    at            timestamptz not null default now(),
    user_id       bigint references app_user (id),
    department_id text,
    action        text not null,
    object_type   text not null default '',
    object_id     text not null default '',
    detail        jsonb not null default '{}',
    remote_addr   text not null default ''
);
create index audit_log_at on audit_log (at);
create index audit_log_object on audit_log (object_type, object_id);

insert into disposition_code (department_id, code, label_ja, label_en, reached, needs_promise, needs_callback, closes_target, sort) values
    (null, 'promise',          '納付約束',         'Promise to pay',              true,  true,  false, true,  10),
    (null, 'installment',      '分納相談希望',     'Wants an installment plan',   true,  false, false, true,  20),
    (null, 'already_paid',     '納付済(申出)',     'Says already paid',           true,  false, false, true,  30),
    (null, 'account_transfer', '口座振替勧奨',     'Account transfer advised',    true,  false, false, true,  40),
    (null, 'reissue_slip',     '納付書再発行',     'Payment slip reissued',       true,  false, false, true,  50),
    (null, 'refused',          '拒否',             'Refused',                     true,  false, false, true,  60),
    (null, 'callback',         '折り返し希望',     'Asked for a call back',       true,  false, true,  false, 70),
    (null, 'other_party',      '本人以外応答',     'Someone else answered',       false, false, false, false, 80),
    (null, 'wrong_number',     '番号誤り',         'Wrong number',                false, false, false, false, 90),
    (null, 'no_conversation',  '無言・通話不成立', 'No conversation',             false, false, false, false, 100);
