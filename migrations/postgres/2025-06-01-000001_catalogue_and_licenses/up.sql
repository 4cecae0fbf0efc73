-- The catalogue and the licenses (PostgreSQL).
-- Ids compare byte-wise (COLLATE "C"), like the domain's ids, so that keyset pagination by id
-- follows the same order as the application and uses the primary key index.
-- Status codes are explicit text with CHECK constraints that refuse unknown values.

CREATE TABLE products (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    title                TEXT NOT NULL,
    description          TEXT NOT NULL,
    product_type         TEXT NOT NULL
        CONSTRAINT products_product_type_check
        CHECK (product_type IN ('CHANNEL', 'PVR', 'CATCHUP', 'STARTOVER', 'CHANNEL_GROUP')),
    is_premium           BOOLEAN NOT NULL,
    is_user_visible      BOOLEAN NOT NULL,
    is_buyable           BOOLEAN NOT NULL,
    auto_grant_on_signup BOOLEAN NOT NULL,
    price_amount         BIGINT CHECK (price_amount >= 0),
    price_currency       TEXT CHECK (length(price_currency) = 3),
    license_duration     BIGINT CHECK (license_duration > 0),
    license_auto_renew   BOOLEAN NOT NULL,
    irdeto_product_id    TEXT,
    -- JSON arrays of channel ids, one per service.
    live_channels        TEXT NOT NULL,
    npvr_channels        TEXT NOT NULL,
    catchup_channels     TEXT NOT NULL,
    startover_channels   TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    CONSTRAINT products_price_complete
        CHECK ((price_amount IS NULL) = (price_currency IS NULL))
);

CREATE TABLE licenses (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    user_id            TEXT COLLATE "C" NOT NULL,
    product_id         TEXT COLLATE "C" NOT NULL
        CONSTRAINT licenses_product_id_fkey REFERENCES products (id) ON DELETE RESTRICT,
    -- EXPIRED is derived from stop_date when read, never stored.
    status             TEXT NOT NULL
        CONSTRAINT licenses_status_check
        CHECK (status IN ('PROCESSING', 'ACTIVE', 'SUSPENDED', 'SUSPENDEDADMIN',
                          'ORDER_ERROR', 'CHECK_INVALID')),
    -- What a PROCESSING license becomes once its entitlement is confirmed.
    requested_status   TEXT
        CONSTRAINT licenses_requested_status_check
        CHECK (requested_status IN ('ACTIVE', 'SUSPENDED')),
    status_reason      TEXT,
    start_date         BIGINT NOT NULL,
    stop_date          BIGINT,
    order_id           TEXT,
    price_amount       BIGINT CHECK (price_amount >= 0),
    price_currency     TEXT CHECK (length(price_currency) = 3),
    purchase_timestamp BIGINT NOT NULL,
    payment_method     TEXT,
    recurring          BOOLEAN NOT NULL,
    expiry_date        BIGINT,
    created_at         BIGINT NOT NULL,
    CONSTRAINT licenses_requested_only_when_processing
        CHECK ((status = 'PROCESSING') = (requested_status IS NOT NULL)),
    CONSTRAINT licenses_reason_only_when_failed
        CHECK (status_reason IS NULL OR status IN ('ORDER_ERROR', 'CHECK_INVALID')),
    CONSTRAINT licenses_stop_after_start
        CHECK (stop_date IS NULL OR stop_date > start_date),
    CONSTRAINT licenses_price_complete
        CHECK ((price_amount IS NULL) = (price_currency IS NULL))
);

-- A user's licenses, in id order (GetLicensesByUser, entitlements).
CREATE INDEX licenses_user_id_id_idx ON licenses (user_id, id);
-- Licenses of a product, in id order (filter[product], ProductInUse).
CREATE INDEX licenses_product_id_id_idx ON licenses (product_id, id);
-- filter[status] and filter[active_at].
CREATE INDEX licenses_status_dates_idx ON licenses (status, start_date, stop_date);
CREATE INDEX licenses_stop_date_idx ON licenses (stop_date);
-- An order id identifies one purchase of one user: how double billing is avoided.
-- NULL order ids never clash.
CREATE UNIQUE INDEX licenses_user_id_order_id_key ON licenses (user_id, order_id);
