//! User API front-end (client apps), /api/license/v4
