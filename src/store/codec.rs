//! The encoding of an `items` value: a [`StoredItem`] in MessagePack, LZ4-compressed
//! (values written by earlier versions, one zstd frame each, are still read).

use sled::transaction::ConflictableTransactionError;

use super::StoreError;
use crate::item::StoredItem;

/// First byte of an `items` value in the current encoding: `LZ4_TAG`, the
/// uncompressed length (u32, little-endian), then an LZ4 block of the MessagePack.
/// Values written before start with a zstd frame's magic (0x28) and are still read.
///
/// LZ4 rather than zstd: an item is a few KB, and zstd spends most of the time of such
/// a small frame building its entropy tables, which made decompression three quarters
/// of reading the newest 100 items. LZ4 decodes the same items about 3x faster, for
/// about a third more bytes.
pub(super) const LZ4_TAG: u8 = b'L';

pub(super) fn encode_item(item: &StoredItem) -> Result<Vec<u8>, StoreError> {
    let packed = rmp_serde::to_vec_named(item)?;
    let mut value = vec![0; 5 + lz4_flex::block::get_maximum_output_size(packed.len())];
    value[0] = LZ4_TAG;
    value[1..5].copy_from_slice(&(packed.len() as u32).to_le_bytes());
    let written =
        lz4_flex::block::compress_into(&packed, &mut value[5..]).map_err(std::io::Error::other)?;
    value.truncate(5 + written);
    Ok(value)
}

/// Largest decompressed item taken on the value's word: the body cap is 16 MiB, so
/// no stored item comes near it.
const MAX_DECODED_ITEM_BYTES: u64 = 64 * 1024 * 1024;

pub(super) fn decode_item(bytes: &[u8]) -> Result<StoredItem, StoreError> {
    let packed = match bytes.split_first() {
        Some((&LZ4_TAG, rest)) if rest.len() >= 4 => {
            let size = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            if u64::from(size) > MAX_DECODED_ITEM_BYTES {
                return Err(std::io::Error::other("item larger than any stored").into());
            }
            lz4_flex::block::decompress(&rest[4..], size as usize)
                .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))?
        }
        _ => decode_zstd(bytes)?,
    };
    Ok(rmp_serde::from_slice(&packed)?)
}

/// An item as stores written before `LZ4_TAG` hold it: one zstd frame, read by a
/// pure-Rust decoder (no C library to build for a format no longer written).
fn decode_zstd(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let invalid = |err| std::io::Error::new(std::io::ErrorKind::InvalidData, err);
    let decoder = ruzstd::decoding::StreamingDecoder::new(bytes).map_err(invalid)?;
    let mut packed = Vec::new();
    decoder
        .take(MAX_DECODED_ITEM_BYTES + 1)
        .read_to_end(&mut packed)?;
    if packed.len() as u64 > MAX_DECODED_ITEM_BYTES {
        return Err(std::io::Error::other("item larger than any stored"));
    }
    Ok(packed)
}

/// A failure inside a transaction, which aborts it.
pub(super) fn abort<E: Into<StoreError>>(err: E) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(err.into())
}
