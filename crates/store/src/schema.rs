//! The tables, as diesel sees them. Written by hand for both backends, with types that exist
//! on both (Text, BigInt, Integer, Bool, Binary, Nullable). The schema drift test
//! (`tests/schema_drift.rs`) fails when this file and the migrations disagree.

diesel::table! {
    products (id) {
        id -> Text,
        title -> Text,
        description -> Text,
        product_type -> Text,
        is_premium -> Bool,
        is_user_visible -> Bool,
        is_buyable -> Bool,
        auto_grant_on_signup -> Bool,
        price_amount -> Nullable<BigInt>,
        price_currency -> Nullable<Text>,
        license_duration -> Nullable<BigInt>,
        license_auto_renew -> Bool,
        irdeto_product_id -> Nullable<Text>,
        live_channels -> Text,
        npvr_channels -> Text,
        catchup_channels -> Text,
        startover_channels -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    licenses (id) {
        id -> Text,
        user_id -> Text,
        product_id -> Text,
        status -> Text,
        requested_status -> Nullable<Text>,
        status_reason -> Nullable<Text>,
        start_date -> BigInt,
        stop_date -> Nullable<BigInt>,
        order_id -> Nullable<Text>,
        price_amount -> Nullable<BigInt>,
        price_currency -> Nullable<Text>,
        purchase_timestamp -> BigInt,
        payment_method -> Nullable<Text>,
        recurring -> Bool,
        expiry_date -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        fingerprint -> Text,
        response_status -> Integer,
        response_body -> Binary,
        created_at -> BigInt,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        action -> Text,
        resource_type -> Text,
        resource_id -> Text,
        occurred_at -> BigInt,
        actor -> Text,
        related_id -> Nullable<Text>,
    }
}

diesel::table! {
    entitlement_jobs (id) {
        id -> BigInt,
        kind -> Text,
        license_id -> Text,
        user_id -> Text,
        irdeto_product -> Text,
        valid_from -> BigInt,
        valid_until -> Nullable<BigInt>,
        state -> Text,
        attempts -> Integer,
        due_at -> BigInt,
        leased_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
    }
}

// One row, bumped by triggers on every write to `products`: the catalogue's change marker.
diesel::table! {
    catalogue_version (id) {
        id -> BigInt,
        version -> BigInt,
    }
}

// License and product events, in commit order once sequenced (`position`).
diesel::table! {
    events (id) {
        id -> BigInt,
        event_id -> Text,
        event_type -> Text,
        user_id -> Nullable<Text>,
        subject_id -> Text,
        occurred_at -> BigInt,
        snapshot -> Text,
        position -> Nullable<BigInt>,
        user_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    event_user_sequences (user_id) {
        user_id -> Text,
        last_seq -> BigInt,
    }
}

diesel::table! {
    event_marks (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        url -> Text,
        secret -> Text,
        event_types -> Text,
        description -> Text,
        after_position -> BigInt,
        disabled_at_ms -> Nullable<BigInt>,
        disabled_reason -> Nullable<Text>,
        failing_since_ms -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        endpoint_id -> Text,
        position -> BigInt,
        event_id -> Text,
        event_type -> Text,
        user_id -> Nullable<Text>,
        state -> Text,
        attempts -> Integer,
        next_attempt_ms -> BigInt,
        lease_until_ms -> Nullable<BigInt>,
        lease_token -> Nullable<Text>,
        last_attempt_ms -> Nullable<BigInt>,
        last_status -> Nullable<Integer>,
        last_answer -> Nullable<Text>,
    }
}

diesel::joinable!(licenses -> products (product_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));

diesel::allow_tables_to_appear_in_same_query!(
    products,
    licenses,
    idempotency_keys,
    audit_log,
    entitlement_jobs,
    catalogue_version,
    events,
    event_user_sequences,
    event_marks,
    webhook_endpoints,
    webhook_deliveries,
);
