//! The suite's RPCs as the compiled descriptor set describes them, for the
//! tests that walk every RPC rather than list them by hand.

use std::collections::{BTreeSet, HashMap};

use prost::Message as _;
use prost_types::{DescriptorProto, FileDescriptorSet, MethodDescriptorProto};

/// The compiled descriptor set of every medsec proto.
pub(crate) fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(medsec_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes")
}

/// Every RPC of `set`: its path (`/package.Service/Method`) and its method.
pub(crate) fn rpcs(
    set: &FileDescriptorSet,
) -> impl Iterator<Item = (String, &MethodDescriptorProto)> {
    set.file.iter().flat_map(|file| {
        file.service.iter().flat_map(move |service| {
            service.method.iter().map(move |method| {
                let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                (path, method)
            })
        })
    })
}

/// Every RPC path in the compiled descriptor set.
pub(crate) fn described_paths() -> BTreeSet<String> {
    rpcs(&descriptor_set()).map(|(path, _)| path).collect()
}

/// Every message type of the descriptor set, by full name (`.pkg.Name`).
pub(crate) fn messages(set: &FileDescriptorSet) -> HashMap<String, DescriptorProto> {
    let mut found = HashMap::new();
    fn add(prefix: &str, message: &DescriptorProto, found: &mut HashMap<String, DescriptorProto>) {
        let name = format!("{prefix}.{}", message.name());
        for nested in &message.nested_type {
            add(&name, nested, found);
        }
        found.insert(name, message.clone());
    }
    for file in &set.file {
        for message in &file.message_type {
            add(&format!(".{}", file.package()), message, &mut found);
        }
    }
    found
}

pub(crate) fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn length_delimited(number: i32, bytes: &[u8], out: &mut Vec<u8>) {
    varint((u64::from(number.unsigned_abs()) << 3) | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}
