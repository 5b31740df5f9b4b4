//! DOL parsing and building from arbitrary bytes: never panics, the built data always has
//! the length the DOL asks for, and a parsed DOL re-encodes to its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pos_emv::dol;

fuzz_target!(|data: &[u8]| {
    // First byte splits the input into the DOL and a pool of values for the lookup.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (dol_bytes, pool) = rest.split_at(split);
    let Ok(entries) = dol::parse_dol(dol_bytes) else {
        return;
    };
    assert_eq!(dol::encode_dol(&entries), dol_bytes);
    let built = dol::build(&entries, |tag| {
        let n = (tag.raw() as usize) % (pool.len() + 1);
        (!n.is_multiple_of(3)).then(|| pool[..n].to_vec())
    });
    assert_eq!(built.len(), dol::data_len(&entries));
});
