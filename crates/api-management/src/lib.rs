//! Management API front-end (BSS), /api/license/management/v4
