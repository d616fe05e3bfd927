//! Bytes that are not a protobuf message of the RPC's request type are the
//! caller's bad input: `INVALID_ARGUMENT` from every RPC, never `INTERNAL`,
//! and the server goes on answering.

use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, TestDatabase, call_raw};
use tonic::Code;

use crate::descriptors::described_paths;
use crate::harness::start;

both_backends!(every_rpc_refuses_bytes_that_are_not_its_request);

async fn every_rpc_refuses_bytes_that_are_not_its_request(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;
    let malformed: [(&str, Vec<u8>); 4] = [
        ("a truncated length", vec![0x0a, 0xff]),
        ("invalid UTF-8 in field 1", vec![0x0a, 0x01, 0xff]),
        ("a length past the end", vec![0x0a, 0x05, b'a']),
        ("a wire type that does not exist", vec![0x0f]),
    ];
    for path in described_paths() {
        for (what, bytes) in &malformed {
            // PingRequest has no fields: a well-formed field 1 of any bytes
            // is an unknown field, which proto3 skips, not bad input.
            if path.ends_with("CeilingService/Ping") && what.starts_with("invalid UTF-8") {
                continue;
            }
            let status = call_raw(suite.channel.clone(), &path, bytes.clone())
                .await
                .unwrap_err();
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{path} given {what}: {status:?}"
            );
        }
    }
    assert!(suite.health("").await.is_ok(), "the server still answers");
    suite.stop().await;
}
