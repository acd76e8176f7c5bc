//! The platform's own ledgers of calls, brought into the store: Huawei's
//! CDR files ([`cdr_import`]) make every IVR call a point key and keep its
//! legs; the platform's call statistics check the mirror ([`verify`]).

pub mod cdr_import;
pub mod verify;
