//! Compiles the medsec protos with protox (pure Rust, no protoc) and generates
//! prost messages plus tonic clients and servers. The encoded descriptor set is
//! kept for gRPC reflection.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "medsec/records/v1/records.proto",
    "medsec/scheduling/v1/scheduling.proto",
    "medsec/billing/v1/billing.proto",
    "medsec/events/v1/events.proto",
    "medsec/ceiling/v1/ceiling.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let file_descriptors = protox::compile(PROTOS, ["."])?;

    let descriptor_path = out_dir.join("medsec_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&file_descriptors),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Undecodable requests are the caller's bad input (INVALID_ARGUMENT).
        .codec_path("crate::codec::ProtoCodec")
        .compile_fds(file_descriptors)?;

    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    println!("cargo:rerun-if-changed=medsec");
    Ok(())
}
