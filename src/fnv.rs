//! 64-bit FNV-1a: a stable, streaming content fingerprint (not a security
//! hash), for record content, the keys file's read part and copy digests.

/// The hash of no bytes; feed on with [`fnv1a`].
pub const START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes`, continued from `state`.
pub fn fnv1a(mut state: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        state = (state ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    state
}
