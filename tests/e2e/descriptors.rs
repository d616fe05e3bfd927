//! The suite's RPCs as the compiled descriptor set describes them, for the
//! tests that walk every RPC rather than list them by hand.

use std::collections::BTreeSet;

use prost::Message as _;
use prost_types::{FileDescriptorSet, MethodDescriptorProto};

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
