-- The platform source contract: what SOURCE_DSN (schema SOURCE_SCHEMA) must hold at least.
-- Extra columns and tables are carried along or ignored. The demo generator creates exactly this.
-- Money is integer cents; timestamps are timestamptz (UTC in storage).

create table if not exists organizations (
    id bigint primary key,
    name text not null,
    status text not null,                 -- active | suspended
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create table if not exists events (
    id bigint primary key,
    organization_id bigint not null,
    name text not null,
    status text not null,                 -- draft | live | ended | cancelled
    starts_at timestamptz not null,
    ends_at timestamptz,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create table if not exists customers (
    id bigint primary key,
    email text not null,
    signup_ip inet,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create table if not exists orders (
    id bigint primary key,
    order_number text not null unique,    -- ORD-...
    organization_id bigint not null,
    event_id bigint not null,
    customer_id bigint,
    buyer_email text not null,
    buyer_ip inet,
    status text not null,                 -- pending | paid | failed | cancelled | expired | refunded | partially_refunded
    currency char(3) not null,
    tickets_amount_cents bigint not null,
    service_fee_cents bigint not null,    -- paid by the buyer
    platform_fee_cents bigint not null,   -- the platform's cut from the organiser
    total_cents bigint not null,          -- tickets_amount_cents + service_fee_cents: what the buyer pays
    ticket_count int not null,
    created_at timestamptz not null,
    paid_at timestamptz,
    updated_at timestamptz not null
);

create table if not exists tickets (
    id bigint primary key,
    order_id bigint not null,
    event_id bigint not null,
    ticket_type text not null,
    price_cents bigint not null,
    qr_code text not null unique,
    status text not null,                 -- valid | used | refunded | void
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create table if not exists payments (
    id bigint primary key,
    order_id bigint not null,
    mollie_payment_id text unique,        -- tr_...
    status text not null,                 -- open | pending | authorized | paid | failed | canceled | expired
    method text,
    amount_cents bigint not null,
    currency char(3) not null,
    failure_reason text,
    created_at timestamptz not null,
    paid_at timestamptz,
    updated_at timestamptz not null
);

create table if not exists refunds (
    id bigint primary key,
    payment_id bigint not null,
    mollie_refund_id text unique,         -- re_...
    amount_cents bigint not null,
    reason text,
    status text not null,                 -- queued | pending | processing | refunded | failed | canceled
    initiated_by text not null,           -- customer | organizer | admin
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create table if not exists webhook_deliveries (
    id bigint primary key,
    webhook_id text not null,             -- WHK-...
    event_type text not null,             -- payment.paid, ...
    organization_id bigint,
    payload jsonb,
    attempt int not null,
    max_attempts int not null,
    status text not null,                 -- pending | delivered | failed
    response_status int,
    last_error text,
    next_retry_at timestamptz,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create table if not exists scans (
    id bigint primary key,
    ticket_id bigint,                     -- null when the QR code is unknown
    event_id bigint not null,
    qr_code text not null,
    device_id text not null,
    result text not null,                 -- ok | invalid_qr | already_used | network_error
    scanned_at timestamptz not null,
    created_at timestamptz not null
);
